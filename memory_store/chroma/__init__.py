"""The store on Chroma: collections per block, durable forgetting, index checks and repair."""

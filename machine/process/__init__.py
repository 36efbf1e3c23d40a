"""The process the runtime lives in: stop and forget signals, and a flat resident memory."""

"""The VRChat gateway: the only code that talks to VRChat (`vrchatapi` for the REST API, `websockets` for
the pipeline); it implements the domain's port (:mod:`flows.domain.port`)."""

"""A local fake of the VRChat API for the flow tests: the endpoints the gateway uses, answering as the
OpenAPI spec (vendored in `vrchat-openapi/`) says, with fault injection."""

from fake_vrchat.server import FakeUser, FakeVRChat, Fault, WireRequest

__all__ = ["FakeUser", "FakeVRChat", "Fault", "WireRequest"]

"""Object storage behind one narrow interface; see `base.ObjectStore`."""

from persistence.storage.base import ObjectInfo, ObjectNotFound, ObjectStore
from persistence.storage.factory import make_store

__all__ = ["ObjectInfo", "ObjectNotFound", "ObjectStore", "make_store"]

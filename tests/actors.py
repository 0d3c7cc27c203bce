"""The actor tests and benchmarks act as: the default organization, with no key."""

from domain import ids
from service.actor import Actor

DEFAULT_ACTOR = Actor(ids.DEFAULT_ORG_ID)

"""The in-memory event store passes the same contract suite as the PostgreSQL one."""

import pytest

from eventkit.memory import InMemoryEventStore
from eventkit.testing import EventStoreContract


class TestInMemoryEventStore(EventStoreContract):
    @pytest.fixture
    def store(self) -> InMemoryEventStore:
        return InMemoryEventStore()

"""The small interface between a sans-I/O run machine and the server's driver.

A run mode (synchronous rounds today; asynchronous or decentralised modes
later) is a machine: the driver feeds it inputs (clients available, results,
departures, timeouts) and drains what it produced (messages to send, events
to record). The machine never waits; the driver owns sockets, timers and
threads. A ``fit_result`` is taken in two steps so that the costly part,
validating and folding the update, can run outside the machine (in a worker
thread for large models) while the machine stays single-threaded:
:meth:`RunMachine.accept_update` says whether the result is wanted and
returns a :class:`Fold`, the caller runs it, then hands it back with
:meth:`RunMachine.update_folded`.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from fednet.exceptions import AggregationError
from fednet.fedopt import ServerState
from fednet.protocol import Error, EvaluateResult, FitResult, Message
from fednet.records import Event, Outgoing, RoundFinished, RoundRecord
from fednet.strategies import Aggregator
from fednet.typing import ClientId, NDArrays


class Phase(enum.Enum):
    """Where a round machine is within a round (the API's ``phase``)."""

    IDLE = "idle"
    FIT = "fit"
    EVALUATE = "evaluate"
    DONE = "done"


EVAL_PER_TRAIN = 9
"""Most validation rows a site holds per training row (``val_fraction`` < 0.9)."""


def bound_evaluation(
    result: EvaluateResult, declared: int
) -> tuple[EvaluateResult, Error | None]:
    """Return the evaluation to count, and the error for its sender if it lied.

    An evaluation's weight in the federated metrics is its ``num_examples``.
    A site's validation split cannot hold more than ``EVAL_PER_TRAIN`` rows
    per training row it ``declared`` at hello: one claiming more counts for
    nothing (as an evaluation without data), and its sender gets an
    ``invalid_update``, so that one site cannot dictate the reported metrics.
    """
    limit = EVAL_PER_TRAIN * max(declared, 1)
    if result.num_examples <= limit:
        return result, None
    reason = f"evaluate_result: num_examples {result.num_examples} exceeds {limit}"
    error = Error("invalid_update", reason, result.run_id, result.server_round)
    return replace(result, num_examples=0), error


@dataclass(eq=False)
class Fold:
    """One accepted update, to be validated and folded into the round's aggregate.

    Folds of one machine must run one at a time (they share the aggregate).
    ``max_examples`` bounds the update's weight (``num_examples``): the server
    sets it to what the client declared at hello, so one client cannot
    outweigh the others by claiming more examples than it holds.
    """

    client_id: ClientId
    result: FitResult = field(repr=False)
    aggregator: Aggregator = field(repr=False)
    error: str | None = None
    max_examples: int | None = None

    @property
    def nbytes(self) -> int:
        """Return the size of the update's arrays."""
        return sum(p.nbytes for p in self.result.parameters)

    def run(self) -> None:
        """Validate and fold the update; record why if it is invalid."""
        num_examples, bound = self.result.num_examples, self.max_examples
        if bound is not None and num_examples > bound:
            self.error = (
                f"num_examples {num_examples} exceeds the {bound} declared at hello"
            )
            return
        try:
            self.aggregator.add(self.result.parameters, self.result.num_examples)
        except AggregationError as e:
            self.error = str(e)


@dataclass(frozen=True)
class RoundCheckpoint(RoundFinished):
    """A round finished with the strategy's state, saved beside the model.

    ``server_state`` (e.g. FedAdam's moments; None for a strategy without
    one) holds the arrays the strategy goes on with, not copies: the next
    round changes them only after the driver has recorded this one.
    """

    server_state: ServerState | None = field(default=None, repr=False)


def round_finished(
    record: RoundRecord, parameters: NDArrays, server_state: ServerState | None
) -> RoundFinished:
    """Return the event of a finished round: a RoundCheckpoint if there is a state."""
    if server_state is None:
        return RoundFinished(record, parameters)
    return RoundCheckpoint(record, parameters, server_state=server_state)


@dataclass(frozen=True)
class Wait:
    """What a machine waits for; a new ``key`` (e.g. ``fit: round 3``) is a new wait."""

    key: str
    timeout_s: float


@dataclass(frozen=True)
class MachineProgress:
    """Where a machine stands, for the dashboard."""

    phase: str
    server_round: int
    selected: tuple[ClientId, ...]
    reported: tuple[ClientId, ...]
    pending: tuple[ClientId, ...]


class MachineOutputs:
    """The output queues every machine has: messages to send, events to record."""

    def __init__(self) -> None:
        self._outgoing: list[Outgoing] = []
        self._events: list[Event] = []

    def messages_to_send(self) -> list[Outgoing]:
        """Return and forget the messages produced since the last call."""
        out, self._outgoing = self._outgoing, []
        return out

    def events(self) -> list[Event]:
        """Return and forget the events produced since the last call."""
        out, self._events = self._events, []
        return out

    def _send(self, recipients: tuple[ClientId, ...], message: Message) -> None:
        self._outgoing.append(Outgoing(recipients, message))

    def _record(self, event: Event) -> None:
        self._events.append(event)


class RunMachine(Protocol):
    """A sans-I/O run mode the server's driver can drive."""

    @property
    def done(self) -> bool:
        """Return whether the run is over (finished or failed)."""

    @property
    def clients_wanted(self) -> int:
        """Return how many eligible clients the machine needs now (0: none)."""

    @property
    def wait(self) -> Wait | None:
        """Return the current wait with its timeout, or None when not waiting."""

    def clients_available(self, available: Sequence[ClientId]) -> None:
        """Take at least ``clients_wanted`` eligible clients (e.g. start a round)."""

    def accept_update(self, client_id: ClientId, result: FitResult) -> Fold | None:
        """Return a Fold for a wanted ``fit_result``, or None if it is ignored."""

    def update_folded(self, fold: Fold) -> None:
        """Take back a Fold once it ran."""

    def evaluate_received(self, client_id: ClientId, result: EvaluateResult) -> None:
        """Take a client's ``evaluate_result``."""

    def client_left(self, client_id: ClientId) -> None:
        """Forget a client that disconnected."""

    def timed_out(self) -> None:
        """End the current wait (its timeout passed)."""

    def fail(self, reason: str) -> None:
        """End the run with a reason."""

    def messages_to_send(self) -> list[Outgoing]:
        """Return and forget the messages produced since the last call."""

    def events(self) -> list[Event]:
        """Return and forget the events produced since the last call."""

    def progress(self) -> MachineProgress:
        """Return where the machine stands."""

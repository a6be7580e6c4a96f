"""Synchronous rounds with secure aggregation: the round machine, stage by stage.

The fit phase of a secure round has four stages (Bonawitz et al. 2017): the
selected sites train and advertise keys, share keys, send masked inputs
(``fit_result`` frames folded into one sum) and reveal the shares that unmask
the sum. Each stage is a wait of its own with ``round_timeout_s``; a stage
left with fewer than the threshold fails the play of the round, which is
then played again like a round short of ``min_clients``.

A round whose selected sites all announced ``secagg-signed``
is signed: the roster carries each site's signature and certificate and a
consistency stage, a wait of its own, comes before the unmask stage.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from fednet.central_dp import CentralDP
from fednet.exceptions import RoundStateError
from fednet.gossip import AES_CTR, SIGNED
from fednet.machine import Fold, Phase, Wait
from fednet.protocol import FitResult
from fednet.rounds import RoundMachine
from fednet.secagg.errors import SecAggError
from fednet.secagg.prg import AES128_CTR, CHACHA20
from fednet.secagg.wire import SecaggInput
from fednet.secround import SecureRound
from fednet.typing import ClientId

logger = logging.getLogger(__name__)


class SecureRoundMachine(RoundMachine):
    """A :class:`RoundMachine` whose coordinator only ever holds the sum.

    Takes the arguments of :class:`RoundMachine`; ``config.secure_aggregation``
    is on. ``capabilities`` tells what a site announced in its hello: a round
    is signed, or masked with AES-128-CTR, when every selected site can.
    """

    def __init__(
        self,
        capabilities: Callable[[ClientId], tuple[str, ...]] = lambda client_id: (),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._secure: SecureRound | None = None
        self._capabilities = capabilities

    def start_round(self, available: Sequence[ClientId]) -> None:
        """Begin a round: ``secagg_setup`` then ``fit`` to every selected site."""
        super().start_round(available)
        if self.phase is not Phase.FIT:
            return
        fit = self._outgoing.pop()
        self._aggregator = None  # the secure sum replaces the plain one
        selected = self._tally.selected

        def everyone(capability: str) -> bool:
            return all(capability in self._capabilities(c) for c in selected)

        try:
            self._secure = SecureRound(
                self.config, self.run_id, self.server_round, selected,
                self.parameters, signed=bool(selected) and everyone(SIGNED),
                prg=AES128_CTR if everyone(AES_CTR) else CHACHA20,
            )
        except SecAggError as e:
            self._tally.pending.clear()
            self._fall_short(f"round {self.server_round}: secure aggregation: {e}")
            return
        self._send(selected, self._secure.setup_message())
        self._outgoing.append(fit)
        kind = "signed (secagg-signed)" if self._secure.signed else "secure"
        self._log(logging.INFO, "fit: round %d is %s, %s masks", self.server_round,
                  kind, self._secure.context.prg)

    def secagg_received(
        self, client_id: ClientId, message: SecaggInput, declared: int
    ) -> None:
        """Take a site's advertisement, shares or unmask shares.

        ``declared`` is the ``num_examples`` it declared at hello.
        """
        secure = self._secure
        run_id, server_round = message.run_id, message.server_round
        if not self._expects(client_id, run_id, server_round, Phase.FIT):
            return
        if secure is None or not secure.expects(message):
            stage = secure.stage if secure else "none"
            self._reject(client_id, f"secure aggregation: {message.type} at"
                         f" stage {stage}")
        else:
            try:
                secure.receive(client_id, message, declared)
            except SecAggError as e:
                self._reject(client_id, f"secure aggregation: {e}")
        self._tally.pending.discard(client_id)
        self._maybe_close()

    def accept_update(self, client_id: ClientId, result: FitResult) -> Fold | None:
        """Return a Fold of a masked input, if the masked-input stage waits for it."""
        secure = self._secure
        if secure is None or secure.stage != "masked_input":
            self._log(logging.WARNING, "fit: ignored a fit_result of %s outside the"
                      " masked-input stage", client_id, client_id=client_id)
            return None
        if not self._expects(client_id, result.run_id, result.server_round, Phase.FIT):
            return None
        self._tally.pending.discard(client_id)
        self._tally.folding.add(client_id)
        return Fold(client_id, result, secure.masked_input(client_id))

    def update_folded(self, fold: Fold) -> None:
        """Account for a folded masked input: the site is in the sum, or rejected."""
        if fold.client_id not in self._tally.folding:
            raise RoundStateError(f"no update of {fold.client_id} is being folded")
        self._tally.folding.discard(fold.client_id)
        if fold.error is None:
            self._tally.reported.append(fold.client_id)
        else:
            self._reject(fold.client_id, f"secure aggregation: {fold.error}")
        self._maybe_close()

    @property
    def wait(self) -> Wait | None:
        """Return the current wait; each secure stage is a wait of its own."""
        wait = super().wait
        if wait is None or self.phase is not Phase.FIT or self._secure is None:
            return wait
        return Wait(f"{wait.key}, secagg {self._secure.stage}", wait.timeout_s)

    def _maybe_close(self) -> None:
        if self._tally.waiting:
            return
        if self.phase is Phase.FIT and self._secure is not None:
            self._close_stage(self._secure)
        else:
            super()._maybe_close()

    def _close_stage(self, secure: SecureRound) -> None:
        """Close the current stage and open the next, or fail this play."""
        try:
            self._next_stage(secure)
        except SecAggError as e:
            self._secure = None
            self._tally.pending.clear()
            self._fall_short(f"round {self.server_round}: secure aggregation"
                             f" failed at stage {secure.stage}: {e}")

    def _next_stage(self, secure: SecureRound) -> None:
        stage = secure.stage
        if stage == "advertise":
            roster = secure.close_advertise()
            parties = tuple(row[0] for row in roster.advertisements)
            self._await(parties, roster)
        elif stage == "share_keys":
            routed = secure.close_share_keys()
            for party, shares in routed.items():
                self._send((party,), shares)
            self._tally.pending = set(routed)
        elif stage == "masked_input":
            request = secure.close_masked_input()
            self._await(request.survivors, request)
        elif stage == "consistency":
            signed = secure.close_consistency()
            self._await(tuple(p for p, _ in signed.signatures), signed)
        else:
            strategy, denominator = self.strategy, None
            if isinstance(strategy, CentralDP) and self.config.dp == "distributed":
                denominator = strategy.expected_clients  # DP-FedAvg's fixed n
            unmasked = secure.result(self.parameters, denominator)
            self._aggregator = unmasked
            self._tally.dropouts_recovered = secure.dropouts_recovered
            self._tally.quantization_error = unmasked.error_bound
            self._secure = None
            self._log(logging.INFO, "fit: round %d unmasked the sum of %d sites"
                      " (%d dropouts recovered)", self.server_round,
                      self._aggregator.count, secure.dropouts_recovered)
            self._close_fit()
            return
        self._log(logging.INFO, "fit: round %d secure stage %s", self.server_round,
                  secure.stage)

    def _await(self, parties: tuple[str, ...], message: Any) -> None:
        recipients = tuple(ClientId(p) for p in parties)
        self._send(recipients, message)
        self._tally.pending = set(recipients)

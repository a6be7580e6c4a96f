"""Signed secure rounds of the round machine with real sites, on the wire."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from fednet.client.secure import SecureSite
from fednet.client.signedsite import SecaggPolicy
from fednet.config import RunConfig
from fednet.protocol import Fit, FitResult
from fednet.records import RoundFinished, RunFailed
from fednet.secagg.errors import SecAggError
from fednet.secagg.wire import SecaggSetup, SecaggSignedSetup, SecaggUnmaskResult
from fednet.securemachine import SecureRoundMachine
from fednet.server.tamper import swap_key
from fednet.strategies import strategy_from_config
from fednet.typing import ClientId, NDArrays
from tests.secagg.pkihelp import identity
from tests.test_securemachine import Harness, _params, _relative, _rng, _updates

SITES = [ClientId(f"site-{i:02d}") for i in range(5)]


class Tampering(Harness):
    """A harness whose coordinator can swap a key; a site's refusal is its Error."""

    swap: bool = False
    refusals: dict[ClientId, str] = {}
    unmasked: set[ClientId] = set()

    def run(self) -> None:
        self.refusals, self.unmasked = {}, set()
        while outgoing := self.machine.messages_to_send():
            for out in outgoing:
                for to, message in swap_key(out.recipients, out.message, self.swap):
                    for client_id in to:
                        self._guarded(client_id, message)

    def _guarded(self, client_id: ClientId, message: Any) -> None:
        try:
            self._deliver(client_id, message)
        except SecAggError as e:
            self.refusals[client_id] = str(e)
            self.machine.client_left(client_id)

    def _answer(self, client_id: ClientId, reply: Any) -> None:
        if isinstance(reply, SecaggUnmaskResult):
            self.unmasked.add(client_id)
        super()._answer(client_id, reply)


def _machine(signs: bool, params: NDArrays) -> SecureRoundMachine:
    config = RunConfig.from_dict({
        "rounds": 1, "min_clients": 2, "secure_aggregation": True,
        "secagg_threshold": 0.6,
    })
    return SecureRoundMachine(
        capabilities=lambda client_id: ("secagg-signed",) if signs else (),
        run_id=1, config=config,
        strategy=strategy_from_config(config), parameters=params, classes=None,
        federated_evaluate=False,
    )


def _play(
    signs: bool, policy: dict[ClientId, SecaggPolicy], swap: bool = False
) -> tuple[Tampering, RoundFinished | RunFailed | None]:
    params = _params()
    harness = Tampering(_machine(signs, params), _updates(params, SITES))
    harness.swap = swap
    harness.sites = {s: SecureSite(s, _rng(s), policy[s]) for s in SITES}
    harness.machine.start_round(list(SITES))
    harness.run()
    ends = [e for e in harness.machine.events()
            if isinstance(e, (RoundFinished, RunFailed))]
    return harness, ends[0] if ends else None  # type: ignore[return-value]


def _policies(verify: bool = True) -> dict[ClientId, SecaggPolicy]:
    return {s: SecaggPolicy(identity(s), verify) for s in SITES}


def test_a_signed_round_is_verified_and_equals_the_unsigned_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    _, plain = _play(False, {s: SecaggPolicy() for s in SITES})
    harness, signed = _play(True, _policies())

    assert isinstance(plain, RoundFinished) and isinstance(signed, RoundFinished)
    assert signed.record.num_clients == 5 and harness.refusals == {}
    assert _relative(signed.parameters, plain.parameters) <= 1e-6
    text = caplog.text
    assert text.count("verified the signed advertisements of 5 sites") == 5
    assert text.count("consistency verified: 5 survivors signed") == 5
    assert "round 1 is signed" in text


def test_a_swapped_key_is_refused_by_every_site_that_got_it() -> None:
    harness, end = _play(True, _policies(), swap=True)

    assert not isinstance(end, RoundFinished)
    assert set(harness.refusals) == set(SITES[1:])  # site-00 got the true roster
    for reason in harness.refusals.values():
        assert reason == "advertisement of site-00: signature does not verify"
    assert harness.unmasked == set()


def test_without_certificates_the_same_swap_goes_unnoticed() -> None:
    """The threat the signed rounds remove: every site reveals its shares."""
    harness, _ = _play(False, {s: SecaggPolicy() for s in SITES}, swap=True)

    assert harness.refusals == {}
    assert harness.unmasked == set(SITES)


def test_a_site_that_only_signs_skips_verification(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    harness, end = _play(True, _policies(verify=False))

    assert isinstance(end, RoundFinished) and harness.refusals == {}
    assert "verified" not in caplog.text


def _fit(site: SecureSite) -> None:
    params = _params()
    fit = Fit(1, 1, {}, params)  # type: ignore[arg-type]
    site.after_fit(fit, FitResult(1, 1, 5, {}, params))


@pytest.mark.parametrize(
    ("policy", "setup", "reason"),
    [
        (SecaggPolicy(identity("site-00"), True), SecaggSetup,
         "the coordinator did not run the signed variant"),
        (SecaggPolicy(), SecaggSignedSetup, "this site has no certificate"),
    ],
    ids=["verifier-unsigned-round", "no-cert-signed-round"],
)
def test_the_site_decides_and_refuses_before_revealing_anything(
    policy: SecaggPolicy, setup: type[SecaggSetup], reason: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    site = SecureSite("site-00", _rng("site-00"), policy)
    site.setup(setup(1, 1, ("site-00", "site-01"), 2, 1.0))
    with pytest.raises(SecAggError, match="refused secure round 1"):
        _fit(site)
    assert reason in caplog.text


def _settings(tmp_path: Any, wrong_key: bool = False, **extra: Any) -> Any:
    """ClientSettings with site-00's files from the test CA (or another's key)."""
    from fednet import pki
    from fednet.settings import ClientSettings
    from tests.secagg.pkihelp import NOW, ca

    cert, key = tmp_path / "site.crt", tmp_path / "site.key"
    leaf = pki.build_leaf(ca(), "site-00", [], NOW)
    cert.write_bytes(leaf.cert_pem())
    other = pki.build_leaf(ca(), "site-01", [], NOW) if wrong_key else leaf
    key.write_bytes(other.key_pem())
    (tmp_path / "ca.crt").write_bytes(ca().cert_pem())
    return ClientSettings(dataset="synthetic", tls_cert=cert, tls_key=key,
                          ca_file=tmp_path / "ca.crt", **extra)


def test_a_site_with_a_certificate_verifies_unless_it_opts_out(tmp_path: Any) -> None:
    from fednet.client.signedsite import secagg_policy
    from fednet.settings import ClientSettings

    default = secagg_policy(_settings(tmp_path))
    assert default.identity is not None and default.verify
    assert len(default.identity.cas) == 1
    trusting = secagg_policy(_settings(tmp_path, secagg_trust_coordinator=True))
    assert trusting.identity is not None and not trusting.verify
    assert secagg_policy(ClientSettings(dataset="synthetic")) == SecaggPolicy()


def test_a_certificate_that_cannot_sign_refuses_secure_rounds(
    tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A key that is not the certificate's: logged, and no secure round joined."""
    from fednet.client.signedsite import secagg_policy

    policy = secagg_policy(_settings(tmp_path, wrong_key=True))
    assert policy == SecaggPolicy(None, True)
    assert "--tls-cert cannot sign" in caplog.text
    setup = SecaggSetup(1, 1, ("site-00", "site-01"), 2, 1.0)
    assert "did not run the signed variant" in (policy.refusal(setup) or "")

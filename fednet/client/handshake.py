"""A connection's first exchange: hello, the coordinator's welcome, the trainers."""

from __future__ import annotations

import time

import aiohttp

from fednet.client.state import ClientState
from fednet.client.trainer import Trainer
from fednet.exceptions import ProtocolError
from fednet.params import Limits
from fednet.protocol import Error, Hello, Message, Trainers, Welcome, parse
from fednet.protocol import serialize_parts
from fednet.trainer_messages import TRAINERS_VERSION

WELCOME_TIMEOUT_S = 30.0
_DATA_FRAMES = (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY)


async def handshake(
    ws: aiohttp.ClientWebSocketResponse,
    hello: Hello,
    trainer: Trainer,
    state: ClientState,
    limits: Limits,
) -> Welcome:
    """Say hello on a fresh socket; return the welcome (see ``Connection.open``)."""
    await ws.send_str(text_frame(hello))
    frame = await ws.receive(timeout=WELCOME_TIMEOUT_S)
    if frame.type not in _DATA_FRAMES:
        raise ConnectionError(f"closed before welcome (code {ws.close_code})")
    message = parse(frame.data, limits)
    if isinstance(message, Error):
        state.state = "refused"
        raise ConnectionError(f"refused by the server: {message.message}")
    if not isinstance(message, Welcome):
        raise ProtocolError(f"expected welcome, got {message.type}")
    state.client_id = message.client_id
    state.state, state.connects = "connected", state.connects + 1
    state.connected_since = time.time()
    # Only a coordinator that knows the message hears of the trainers;
    # to an older one this client is one of the previous release.
    offered = trainer.announce()
    if message.protocol_version >= TRAINERS_VERSION and offered:
        await ws.send_str(text_frame(Trainers(tuple(offered))))
    return message


def text_frame(message: Message) -> str:
    """Return a control message's one text frame."""
    (frame,) = serialize_parts(message)
    assert isinstance(frame, str)
    return frame

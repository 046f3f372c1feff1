"""Commands to a vehicle and its answers, protocol v1 (docs/protocol.md, "Commands").

The hub publishes a ``Command`` on ``l4mon/v1/{site}/vehicle/{vehicle}/command`` (QoS 1); the
vehicle answers each step with a ``CommandAnswer`` on ``.../command_ack`` (QoS 1). Both carry
the command's ``id``: the vehicle executes an id once however often it arrives, and the hub
keeps each answer of an id once however often it arrives. Kept apart from the telemetry
topics (telemetry/topics.py): these are not measurements, and the hub never binds them to a
vehicle's state.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal, NamedTuple

import msgspec

from telemetry.topics import PREFIX, valid_name
from telemetry.wire import EpochSeconds

CommandKind = Literal["stop", "pull_over", "resume", "message"]
COMMAND_KINDS: Final[tuple[str, ...]] = ("stop", "pull_over", "resume", "message")
#: What a vehicle answers, in the order a command goes through them; ``done`` and
#: ``refused`` end it.
AnswerStatus = Literal["received", "executing", "done", "refused"]
ANSWERS: Final[tuple[str, ...]] = ("received", "executing", "done", "refused")
#: The last two segments of a command and an answer topic.
COMMAND: Final = "command"
ANSWER: Final = "command_ack"

#: A command id: the same characters as any l4mon name, so it is safe in a log and a URL.
CommandId = Annotated[str, msgspec.Meta(min_length=1, max_length=64,
                                        pattern=r"^[A-Za-z0-9_.:-]+$")]
Text = Annotated[str, msgspec.Meta(max_length=500)]


class Command(msgspec.Struct, frozen=True, omit_defaults=True, forbid_unknown_fields=False):
    """``l4mon/v1/{site}/vehicle/{vehicle}/command``: hub to vehicle, QoS 1, never retained."""

    id: CommandId
    kind: CommandKind
    #: When the hub issued it (the hub's clock): a vehicle may refuse one too old to act on.
    ts: EpochSeconds
    #: The operator who issued it, and why: for the vehicle's own log.
    by: Annotated[str, msgspec.Meta(max_length=64)]
    reason: Text | None = None
    #: ``message``: what to show and say to the passengers.
    text: Text | None = None
    #: ``resume`` only: the operator resumed although a takeover cause still held, with this
    #: reason (the hub refuses it otherwise).
    override: Text | None = None


class CommandAnswer(msgspec.Struct, frozen=True, omit_defaults=True):
    """``l4mon/v1/{site}/vehicle/{vehicle}/command_ack``: vehicle to hub, QoS 1."""

    id: CommandId
    status: AnswerStatus
    ts: EpochSeconds
    #: Why, for ``refused`` (required then) and optionally for the others.
    reason: Text | None = None

    def __post_init__(self) -> None:
        if self.status == "refused" and not self.reason:
            raise ValueError("a refusal needs a reason")


class CommandRoute(NamedTuple):
    """A parsed command or answer topic."""

    kind: str  # COMMAND | ANSWER
    site: str
    vehicle: str


def command_topic(site: str, vehicle: str) -> str:
    return f"{PREFIX}/{site}/vehicle/{vehicle}/{COMMAND}"


def answer_topic(site: str, vehicle: str) -> str:
    return f"{PREFIX}/{site}/vehicle/{vehicle}/{ANSWER}"


def is_command_family(topic: str) -> bool:
    """Cheap test (one ``endswith``) the hub runs before the telemetry decoder."""
    return topic.endswith(("/command", "/command_ack"))


def parse_command_topic(topic: str) -> CommandRoute | None:
    """The route of a v1 command or answer topic, or None for any other shape or a bad name."""
    parts = topic.split("/")
    if len(parts) != 6 or f"{parts[0]}/{parts[1]}" != PREFIX or parts[3] != "vehicle" \
            or parts[5] not in (COMMAND, ANSWER):
        return None
    if not (valid_name(parts[2]) and valid_name(parts[4])):
        return None
    return CommandRoute(parts[5], parts[2], parts[4])


_encode = msgspec.json.Encoder().encode
_commands = msgspec.json.Decoder(Command)
_answers = msgspec.json.Decoder(CommandAnswer)


def encode(message: Command | CommandAnswer) -> bytes:
    return _encode(message)


def decode_command(payload: bytes) -> Command:
    """msgspec.ValidationError / DecodeError when it is not a valid command."""
    return _commands.decode(payload)


def decode_answer(payload: bytes) -> CommandAnswer:
    """msgspec.ValidationError / DecodeError when it is not a valid answer."""
    return _answers.decode(payload)

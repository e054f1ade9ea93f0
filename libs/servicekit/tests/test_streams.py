"""The JetStream streams every service ensures at start: streamed output is bounded in
bytes (the oldest messages go first), and a stream made before the bound gets it at the
next start. Against a real nats-server with JetStream, on a small bound."""

from contextlib import AsyncExitStack

from faststream.nats import NatsBroker
from nats.aio.client import Client as NatsClient
from nats.js.api import DiscardPolicy, StreamConfig

from llmsafespace.contracts import subjects
from llmsafespace.servicekit import ServiceSettings, Startup, ensure_streams
from llmsafespace.servicekit.bus import OUTPUT_MAX_AGE_SECONDS

LIMIT = 64 * 1024
CHUNK = b"x" * 4096


async def _flood(connection: NatsClient, subject: str, count: int) -> None:
    js = connection.jetstream()
    for _ in range(count):
        await js.publish(subject, CHUNK)


async def test_streamed_output_keeps_at_most_its_byte_limit_and_drops_the_oldest(
    connection: NatsClient,
) -> None:
    await ensure_streams(connection, LIMIT)
    subject = subjects.output("sb-aaaaaaaaaaaa", "exec-1")
    await _flood(connection, subject, 4 * LIMIT // len(CHUNK))
    js = connection.jetstream()
    info = await js.stream_info(subjects.OUTPUT_STREAM)
    assert info.config.max_bytes == LIMIT
    assert info.config.discard == DiscardPolicy.OLD
    assert 0 < info.state.bytes <= LIMIT
    assert info.state.first_seq > 1  # the oldest went
    assert info.state.last_seq == 4 * LIMIT // len(CHUNK)  # every publish was stored


async def test_an_output_stream_made_before_the_limit_gets_it_at_the_next_start(
    connection: NatsClient,
) -> None:
    js = connection.jetstream()
    await js.add_stream(
        StreamConfig(
            name=subjects.OUTPUT_STREAM,
            subjects=[subjects.OUTPUT_ALL],
            max_age=OUTPUT_MAX_AGE_SECONDS,
        )
    )
    await _flood(connection, subjects.output("sb-aaaaaaaaaaaa", "exec-1"), 2 * LIMIT // len(CHUNK))
    assert (await js.stream_info(subjects.OUTPUT_STREAM)).state.bytes > LIMIT

    await ensure_streams(connection, LIMIT)

    info = await js.stream_info(subjects.OUTPUT_STREAM)
    assert info.config.max_bytes == LIMIT
    assert info.state.bytes <= LIMIT


async def test_a_service_start_applies_the_output_limit_of_its_settings(nats_url: str) -> None:
    settings = ServiceSettings(
        NATS_URL=nats_url, LOG_FORMAT="json", LOG_LEVEL="warning", OUTPUT_STREAM_MAX_BYTES="2Mi"
    )
    async with AsyncExitStack() as stack:  # `starting` without configuring logging
        broker = NatsBroker(nats_url, logger=None)
        await Startup("test-streams", settings, stack).bus(broker)
        info = await broker.connection.jetstream().stream_info(subjects.OUTPUT_STREAM)
    assert info.config.max_bytes == 2 * 2**20
    assert ServiceSettings().output_stream_bytes() == 2**30  # the default: 1Gi

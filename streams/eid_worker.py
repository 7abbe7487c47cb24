"""A worker running only the e-ID counting agent: `python -m streams.eid_worker` (settings from STREAMS_*).

`popsync worker` runs every agent once `streams.worker.build_worker_app` calls `attach_eid`; this entry
point runs the e-ID agent alone (tests, or a deployment that scales e-ID counting separately).
"""

from __future__ import annotations

import logging

import faust

from schemas.masking import MaskingFilter
from streams.app import create_app
from streams.config import StreamsSettings
from streams.eid import attach_eid
from streams.topics import TopicNames, ensure_topics

__all__ = ["build_eid_app", "main"]


def build_eid_app(settings: StreamsSettings) -> faust.App:
    """An app holding the e-ID agent, table and snapshot timer only."""
    app = create_app(settings)
    attach_eid(app, TopicNames(settings.topic_prefix), settings)
    return app


class _Worker(faust.Worker):
    """faust's worker with the configured log level and popsync's log masking on the root handlers."""

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        super().on_setup_root_logger(logger, level)
        logger.setLevel(str(self.loglevel).upper())
        for handler in logger.handlers:
            handler.addFilter(MaskingFilter())


def main() -> None:
    settings = StreamsSettings()
    topics = TopicNames(settings.topic_prefix)
    replication = ensure_topics(
        settings.bootstrap_servers,
        (topics.eid_events, topics.eid_progress),
        settings.partitions,
        replication=settings.replication_factor or None,
    )
    settings = settings.model_copy(update={"replication_factor": replication})
    worker = _Worker(build_eid_app(settings), loglevel=settings.log_level, quiet=True, redirect_stdouts=False)
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()

"""Plain-text tables of the operations models, for the terminal."""

from __future__ import annotations

from services.ops.deadletters import DeadLetter, DeadLetterQueue, ReplayReport
from services.ops.status import PipelineStatus
from services.ops.throughput import ThroughputTracker


def age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit} ago"
    return f"{max(0.0, seconds):.0f}s ago"


def table(rows: list[list[str]], indent: str = "  ") -> list[str]:
    """Left-aligned first column, right-aligned numbers."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [row[0].ljust(widths[0])] + [
            cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append(indent + "  ".join(cells).rstrip())
    return lines


def status_text(status: PipelineStatus, tracker: ThroughputTracker | None = None) -> str:
    taken = status.taken_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    prefix = f" (topic prefix {status.topic_prefix})" if status.topic_prefix else ""
    lines = [f"Pipeline at {taken}{prefix}"]
    for service in status.services:
        workers = f"{service.active_members} worker{'s' if service.active_members != 1 else ''}"
        lines.append("")
        group = f"group {service.group_id}, {service.group_state}"
        lines.append(f"{service.service}: {group}, {workers}, lag {service.lag}")
        header = ["topic", "end", "committed", "lag", "dead letters", "last event"]
        if tracker is not None:
            header.append("processed/s")
        rows = [header]
        for topic in service.topics:
            row = [
                topic.topic,
                str(topic.end_offset),
                "-" if topic.committed is None else str(topic.committed),
                str(topic.lag),
                f"{topic.dead_letters_pending}/{topic.dead_letters}" if topic.dead_letters else "0",
                age(topic.last_event_age_s),
            ]
            if tracker is not None:
                rate = tracker.rate(f"{service.service}/{topic.topic}")
                row.append("-" if rate is None else f"{rate:.1f}")
            rows.append(row)
        lines += table(rows)
    lines.append("")
    lines += [f"! {problem}" for problem in status.problems] or ["no problems"]
    lines.append("(dead letters: not replayed/total)")
    return "\n".join(lines)


def queues_text(queues: list[DeadLetterQueue]) -> str:
    rows = [["dead-letter topic", "depth", "pending", "oldest", "newest"]]
    for queue in queues:
        rows.append(
            [
                queue.topic,
                str(queue.depth),
                str(queue.pending),
                queue.oldest_at.strftime("%Y-%m-%d %H:%M") if queue.oldest_at else "-",
                queue.newest_at.strftime("%Y-%m-%d %H:%M") if queue.newest_at else "-",
            ]
        )
    lines = table(rows, indent="")
    for queue in queues:
        if queue.by_reason:
            counted = f" (first {queue.counted} counted)" if queue.truncated else ""
            lines.append(f"\n{queue.topic} by reason{counted}:")
            lines += [f"  {count:>6}  {reason}" for reason, count in queue.by_reason.items()]
    return "\n".join(lines)


def letters_text(letters: list[DeadLetter]) -> str:
    if not letters:
        return "no dead letters"
    blocks = []
    for letter in letters:
        origin = (
            f"{letter.original_topic}[{letter.original_partition}]@{letter.original_offset}"
            if letter.original_topic
            else "unknown"
        )
        event = f"{letter.ce_type} {letter.ce_id}" if letter.ce_id else "no CloudEvents id"
        lines = [
            f"{letter.topic}[{letter.partition}]@{letter.offset}  {letter.time:%Y-%m-%d %H:%M:%S} UTC"
            f"{'  (replayed)' if letter.replayed else ''}",
            f"  error:   {letter.dlq_error}",
            f"  service: {letter.dlq_service}   from: {origin}",
            f"  event:   {event}",
        ]
        if letter.payload is not None:
            lines.append(f"  payload: {letter.payload}")
        blocks.append("\n".join(lines))
    return "\n".join(blocks)


def replay_text(report: ReplayReport) -> str:
    verb = "would replay" if report.dry_run else "replayed"
    targets = ", ".join(f"{count} to {topic}" for topic, count in report.republished_to.items())
    lines = [f"{report.topic}: {verb} {report.replayed} dead letter(s){': ' + targets if targets else ''}"]
    if report.already_replayed:
        lines.append(f"  {report.already_replayed} replayed before (not again)")
    for skipped in report.skipped:
        lines.append(f"  skipped offset {skipped.offset}: {skipped.reason}")
    return "\n".join(lines)

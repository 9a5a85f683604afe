"""The ``navigator`` command: train, run and evaluate the assistant."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from types import FrameType

from navigator import stack, training
from settings import Settings, SettingsError


def _train(args: argparse.Namespace, settings: Settings) -> int:
    training.ensure_model(settings.models_dir, force=args.force)
    return 0


def _run(args: argparse.Namespace, settings: Settings) -> int:
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    model_file = training.ensure_model(settings.models_dir)
    more = tuple(settings.rasa_port + n for n in range(1, settings.rasa_instances))
    rasa = f"{settings.private_host}:{settings.rasa_port}" + (
        f"-{settings.rasa_port + len(more)}" if more else "")
    print(f"starting the action server ({settings.private_host}:{settings.actions_port}) "
          f"and {settings.rasa_instances} Rasa server(s) ({rasa}) ...", flush=True)
    stopping = False

    def _stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    try:
        running = stack.start(
            model_file, host=settings.private_host, gateway_host=settings.gateway_host,
            rasa_port=settings.rasa_port,
            actions_port=settings.actions_port, var_dir=settings.var_dir,
            tracker_db=settings.var_dir / "tracker.db", tracker_url=settings.tracker_url,
            lock_url=settings.lock_store_url, more_rasa_ports=more,
            api_token=settings.rasa_api_token, directory_url=settings.directory,
            web_port=settings.web_port,
        )
    except stack.StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"ready: open {running.web_url} (chat widget demo; the only public port, listening "
          f"on {settings.gateway_host}). Rasa's REST channel at {running.rest_url}, actions "
          f"at {running.actions_url} (private). Press Ctrl-C to stop.", flush=True)
    code = 0
    from navigator import retention

    schedule = retention.start_schedule(settings)  # old conversations deleted as it runs
    try:
        while not stopping:
            running.check_alive()
            time.sleep(0.5)
    except stack.StackError as exc:
        print(f"error: {exc}; stopping", file=sys.stderr)
        code = 1
    print("stopping ...", flush=True)
    if schedule:
        schedule.stop()
    running.stop()
    print("stopped.", flush=True)
    return code


def _eval(args: argparse.Namespace, settings: Settings) -> int:
    from navigator import evaluate

    return evaluate.main(settings, folds=args.folds, skip_cv=args.skip_cv,
                         dev_only=args.dev_only)


def _retention(args: argparse.Namespace, settings: Settings) -> int:
    from navigator import retention

    url = args.db or settings.tracker
    days = settings.retention_days if args.days is None else args.days
    print(retention.delete_older_than(url, days))
    return 0


def _find_conversation(args: argparse.Namespace, settings: Settings) -> int:
    from knowledge import pseudonyms
    from navigator import retention

    key = pseudonyms.number_key(settings.number_secret, settings.var_dir)
    found = pseudonyms.sender_of(key, args.id, retention.conversation_ids(
        args.db or settings.tracker))
    if found is None:
        print(f"no conversation has the id {args.id}", file=sys.stderr)
        return 1
    print(found)
    return 0


def _report(args: argparse.Namespace, settings: Settings) -> int:
    from navigator import report

    built = report.build(args.db or settings.tracker, days=args.days,
                         min_confidence=args.min_confidence, progress=report.stderr_progress)
    output = report.FORMATS[args.format](built)
    if args.out:
        with open(args.out, "w", encoding="utf-8", newline="") as out:
            out.write(output)
        print(f"wrote {len(built.groups)} groups ({built.listed} messages) to {args.out}")
    else:
        sys.stdout.write(output)
    return 0


def _bench(args: argparse.Namespace, _settings: Settings) -> int:
    from navigator import bench

    return bench.main(args)


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(prog="navigator", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train the model if its inputs changed")
    train.add_argument("--force", action="store_true", help="train even if up to date")
    train.set_defaults(func=_train)
    run = sub.add_parser("run", help="train if needed, then serve (Ctrl-C stops)")
    run.set_defaults(func=_run)
    ev = sub.add_parser("eval", help="print NLU cross-validation and held-out accuracy")
    ev.add_argument("--folds", type=int, default=5, help="cross-validation folds (default 5)")
    ev.add_argument("--skip-cv", action="store_true", help="only the held-out evaluation")
    ev.add_argument("--dev-only", action="store_true",
                    help="leave out the frozen test splits (for tuning)")
    ev.set_defaults(func=_eval)
    ret = sub.add_parser("retention", help="delete conversations older than N days")
    ret.add_argument("--days", type=float, default=None,
                     help="keep this many days (default NAVIGATOR_RETENTION_DAYS or 30)")
    ret.add_argument("--db", help="tracker store URL (default: NAVIGATOR_TRACKER_URL, else "
                     "var/tracker.db)")
    ret.set_defaults(func=_retention)
    find = sub.add_parser("find-conversation", help="the conversation id (phone number) of an "
                          "SMS hand-off's sms-... id, to resume it")
    find.add_argument("id", help="the sms-... id from the hand-off summary")
    find.add_argument("--db", help="tracker store URL (default: NAVIGATOR_TRACKER_URL, else "
                      "var/tracker.db)")
    find.set_defaults(func=_find_conversation)
    rep = sub.add_parser("report", help="unanswered questions of the last N days, grouped "
                         "(personal details masked)")
    rep.add_argument("--days", type=float, default=30, help="look back this many days "
                     "(default 30)")
    rep.add_argument("--format", choices=("table", "csv", "html"), default="table")
    rep.add_argument("--out", help="write to this file (default: standard output)")
    rep.add_argument("--min-confidence", type=float, default=0.5,
                     help="FAQ answers less sure than this are listed (default 0.5)")
    rep.add_argument("--db", help="tracker store URL (default: NAVIGATOR_TRACKER_URL, else "
                     "var/tracker.db)")
    rep.set_defaults(func=_report)
    bench = sub.add_parser("bench", help="provider search latency, real and synthetic directory")
    bench.add_argument("--rows", type=int, default=1_000_000, help="synthetic directory size")
    bench.add_argument("--queries", type=int, default=500)
    bench.add_argument("--postgres", default="auto",
                       help="'auto' (start a private server), 'off', or a postgresql:// URL")
    bench.set_defaults(func=_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``navigator`` command."""
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        return args.func(args, settings)
    except (SettingsError, RuntimeError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

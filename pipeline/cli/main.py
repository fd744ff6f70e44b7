"""The `curate` command line: a thin layer over the Python API (`curate.pipeline.execution.run`, `…sources.crawls`, …)."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Annotated, Optional

import typer

from curate.errors import UserError

EXIT_USER_ERROR = 2  # one line on stderr: a user mistake or an environment fault; nothing half-written is trusted
EXIT_INPUTS_MISSING = 3  # the run completed without some missing or empty inputs; a rerun retries them

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Per-language web-data curation: Common Crawl → clean, deduplicated Parquet shards, on Ray.")


def _languages(value: str, lid: str | None = None) -> list[str]:
    """`--lang`: a comma-separated list, `all-configured` (the config files) or `all` (every language a run
    accepts; with `--lid ft176`, those lid.176 labels, said on the first line)."""
    from curate.language_configs import configured_languages
    from curate.language_configs.schema import available_languages

    if value == "all-configured":
        return configured_languages()
    if value != "all":
        return [v.strip() for v in value.split(",") if v.strip()]
    every = available_languages()
    if lid != "ft176":
        return every
    from curate.language_configs.labels import ft176_labels

    labelled = [code for code in every if code in set(ft176_labels().values())]
    typer.echo(f"--lang all with --lid ft176: the {len(labelled)} languages lid.176 labels; the other "
               f"{len(every) - len(labelled):,} need GlotLID (--lid glotlid)", err=True)
    return labelled


@app.command()
def run(
    lang: Annotated[str, typer.Option("--lang", help="language(s): fin, fin_Latn, fin,ekk,swe, all (FineWeb2's "
                                                      "1,929 and the configured ones) or all-configured")],
    snapshots: Annotated[str, typer.Option(help="crawl globs, comma-separated: '2024-*', 'CC-MAIN-2024-1?'")],
    source: Annotated[str, typer.Option(help="https://data.commoncrawl.org, s3://commoncrawl or a local mirror")]
    = "https://data.commoncrawl.org",
    output: Annotated[str, typer.Option("--output", "-o", help="output folder or fsspec URL")] = "out",
    max_files: Annotated[Optional[int], typer.Option(help="seeded sample of at most N WARCs per crawl")] = None,
    limit: Annotated[Optional[int], typer.Option(help="read at most N response records per WARC")] = None,
    lid: Annotated[Optional[str], typer.Option(help="LID model: glotlid, ft176 (offline; 176 languages, and it "
                                                    "labels most Bosnian and Malay pages Croatian and Indonesian: "
                                                    "docs/configs.md) or a path")] = None,
    lid_min_score: Annotated[Optional[float], typer.Option(help="override the configs' LID threshold")] = None,
    extractor: Annotated[str, typer.Option(help="trafilatura or resiliparse")] = "trafilatura",
    no_prefilter: Annotated[bool, typer.Option("--no-prefilter", help="extract every page (no cheap LID pass "
                                                                       "before extraction)")] = False,
    files_per_unit: Annotated[int, typer.Option(help="at most N WARCs a unit (fewer for 4 units a worker)")] = 8,
    buckets: Annotated[Optional[int], typer.Option(help="buckets (doc_key ranges) per language for stage 3 and the "
                                                   "shards (default: one per --bucket-bytes of stage-1 files)")] = None,
    bucket_bytes: Annotated[int, typer.Option(help="stage-1 Parquet bytes per bucket when --buckets is not given")]
    = 1_000_000_000,
    cpus: Annotated[Optional[int], typer.Option(help="CPUs of the local Ray (default: all)")] = None,
    cpus_per_task: Annotated[float, typer.Option(help="CPUs Ray reserves per unit")] = 1.0,
    memory_per_task: Annotated[Optional[int], typer.Option(help="memory (MB) Ray reserves per unit")] = None,
    max_retries: Annotated[int, typer.Option(help="Ray retries of a unit whose worker died, before bisecting it")]
    = 3,
    rehydration: Annotated[str, typer.Option(help="upsampling by cluster size: removal_rates (FineWeb2's rule, "
                                                  "from this run's statistics), fineweb2_fixed or none")]
    = "removal_rates",
    max_repetitions: Annotated[int, typer.Option(min=1, help="repetitions of the best-kept cluster size")] = 10,
    rehydration_min_docs: Annotated[int, typer.Option(min=1, help="cluster sizes with fewer documents are pooled "
                                                                  "into the tail entry")] = 100,
    materialize: Annotated[bool, typer.Option("--materialize", help="write repeated rows instead of a weight")]
    = False,
    seed: Annotated[int, typer.Option(help="seed of the file sample and of the shard shuffle")] = 0,
    select: Annotated[str, typer.Option(help="auto (index+neighbors where Common Crawl's index can label every "
                                             "language, else full; the run's first line says which), full (every "
                                             "record of every WARC), index (only the records Common Crawl's columnar "
                                             "URL index labels with the language, read by byte range) or "
                                             "index+neighbors (also closely related languages)")]
    = "auto",
    index_primary_only: Annotated[bool, typer.Option("--index-primary-only", help="with --select index: only "
                                                     "records whose first index language is the language")] = False,
    skip_quarantined: Annotated[bool, typer.Option("--skip-quarantined", help="keep files an earlier run "
                                                   "quarantined out (default: retry them)")] = False,
    max_quarantined: Annotated[Optional[int], typer.Option(help="fail the run when more files are quarantined "
                                                           "(default: 1 % of the files, at least 1)")] = None,
    max_errors: Annotated[int, typer.Option(min=0, help="documents blocks may raise on (per language) before the run "
                                                        "stops: a bug in a block, not bad input")] = 100,
    scorer_gpus: Annotated[Optional[int], typer.Option(min=0, help="GPUs for the transformer scorers' actor pool "
                                                                   "(default: every GPU of the cluster; 0: CPUs)")]
    = None,
    optout: Annotated[Optional[str], typer.Option(help="opt-outs to honour: robots,tdm,list or none (default: each "
                                                       "that has data; see docs/optout.md)")] = None,
    robots_agents: Annotated[Optional[str], typer.Option(help="user agents, comma-separated: a page is dropped if "
                                                              "its host's robots.txt disallows any of them (default: "
                                                              "CCBot and the AI-training crawlers, docs/optout.md)")]
    = None,
    robots_from: Annotated[Optional[list[str]], typer.Option("--robots-from", help="also use the robots.txt files "
                                                             "of this crawl (e.g. the latest; its WARCs are not "
                                                             "read); repeatable")] = None,
    optout_list: Annotated[Optional[list[str]], typer.Option("--optout-list", help="takedown list (file or URL): one "
                                                             "domain, host or URL prefix a line; repeatable; "
                                                             "recorded in the output")] = None,
    decontaminate: Annotated[Optional[list[str]], typer.Option("--decontaminate", help="evaluation sets to remove "
                                                               "documents of: FILE (an item a line), FILE.jsonl#COL, "
                                                               "FILE.parquet#COL or hf:ORG/DATA:CONFIG:SPLIT#COL, "
                                                               "comma-separated or repeated (docs/decontamination.md)")]
    = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="print files, bytes and a cost estimate; write nothing")]
    = False,
    skip_unavailable: Annotated[bool, typer.Option("--skip-unavailable", help="run the languages whose word "
                                                   "tokenizer is installed, naming the others (default: stop, "
                                                   "listing every missing package)")] = False,
) -> None:
    """Turn Common Crawl snapshots into per-language Parquet shards under OUTPUT/<lang_Script>/."""
    from curate.pipeline.execution.executor import Resources
    from curate.pipeline.execution.run import RunOptions, describe_plan, make_plan
    from curate.pipeline.execution.run import run as run_pipeline
    from curate.pipeline.execution.run import run_summary

    if rehydration not in ("removal_rates", "fineweb2_fixed", "none"):
        raise UserError(f"--rehydration {rehydration!r}: choose removal_rates, fineweb2_fixed or none")
    options = RunOptions(
        languages=_languages(lang, lid), snapshots=snapshots, source=source, output=output, max_files=max_files,
        limit=limit, seed=seed, lid=lid, lid_min_score=lid_min_score, extractor=extractor,
        files_per_unit=files_per_unit, buckets=buckets, bucket_bytes=bucket_bytes, num_cpus=cpus,
        rehydration=rehydration,
        max_repetitions=max_repetitions, rehydration_min_docs=rehydration_min_docs, materialize=materialize,
        prefilter=not no_prefilter, select=select, index_primary_only=index_primary_only,
        skip_quarantined=skip_quarantined, max_quarantined=max_quarantined, max_errors=max_errors,
        scorer_gpus=scorer_gpus,
        optout=optout, robots_from=list(robots_from or []), optout_lists=list(optout_list or []),
        decontaminate=list(decontaminate or []),
        **({"robots_agents": tuple(a.strip() for a in robots_agents.split(",") if a.strip())} if robots_agents else {}),
        resources=Resources(cpus_per_task, memory_per_task * 2**20 if memory_per_task else None, max_retries),
    )
    from curate.pipeline.execution.graph import build_graph

    graph = build_graph(options.languages, lid=lid, min_lid_score=lid_min_score, extractor=extractor,
                        prefilter=options.prefilter, skip_unavailable=skip_unavailable)
    for note in graph.notes:
        typer.echo(note, err=True)
    options.languages = list(graph.languages)
    if dry_run:
        plan = make_plan(options)
        typer.echo(f"languages: {', '.join(graph.languages)}; crawls: {', '.join(plan.crawls)}")
        for warc in plan.files:
            typer.echo(f"  {warc.path}")
        typer.echo(describe_plan(plan))
        return
    stats = run_pipeline(options, graph)
    if graph.skipped:
        typer.echo(f"skipped {len(graph.skipped)} language(s): {', '.join(graph.skipped)}", err=True)
    for code, values in stats.items():
        released = values["released"]["documents"]
        typer.echo(f"{code}: {released:,} documents in {output}/{code}/data ({run_summary(values)})")
        if values["quarantined"]:
            typer.echo(f"  quarantined {len(values['quarantined'])} file(s): see {output}/{code}/stats.json", err=True)
    missing = sorted({m for values in stats.values() for m in values.get("missing", [])})
    if missing:
        shown = "; ".join(missing[:3]) + ("; …" if len(missing) > 3 else "")
        typer.echo(f"error: {len(missing)} input file(s) missing or empty ({shown}); everything else is released: "
                   f"rerun the same command to retry them (see {output}/<lang>/stats.json)", err=True)
        sys.exit(EXIT_INPUTS_MISSING)


@app.command()
def verify(
    output: Annotated[str, typer.Argument(help="the output folder of a run (a path or fsspec URL)")],
) -> None:
    """Check that every file a committed unit lists is there, with its recorded size and checksum; changes nothing.
    Exit 1 when something is missing or damaged (rerunning the same `curate run` recomputes it)."""
    from curate.pipeline.execution.storage import Output
    from curate.pipeline.execution.storage import verify as verify_output

    out = Output(output)
    if not out.fs.exists(out.path("_work", "manifests")):
        raise UserError(f"{output} has no committed units (no _work/manifests): run `curate run --output {output}`")
    units, problems = verify_output(out)
    for problem in problems:
        typer.echo(problem)
    if problems:
        typer.echo(f"{len(problems)} problem(s) in {units:,} units: rerun the same `curate run` to recompute them",
                   err=True)
        raise typer.Exit(1)
    typer.echo(f"{output}: {units:,} units, every file present and intact")


@app.command()
def snapshots(
    source: Annotated[str, typer.Option(help="https://data.commoncrawl.org, s3://commoncrawl or a local mirror")]
    = "https://data.commoncrawl.org",
) -> None:
    """List the crawls a source has, newest first."""
    from curate.pipeline.sources.crawls import Source

    for crawl in Source(source).crawls():
        typer.echo(crawl)


@app.command()
def extract(
    path: Annotated[Path, typer.Argument(help="an .html file or a WARC (.warc / .warc.gz)")],
    limit: Annotated[Optional[int], typer.Option(help="at most N records of a WARC")] = None,
    extractor: Annotated[str, typer.Option(help="trafilatura or resiliparse")] = "trafilatura",
) -> None:
    """Print what the extractor keeps: the text of a page, or JSON lines (url, id, text) for a WARC."""
    import pyarrow as pa

    from curate.blocks.extract import Extract
    from curate.blocks.warc import WarcReader, decode_html

    if not path.is_file():
        raise UserError(f"{path} does not exist")
    block = Extract(extractor=extractor)
    block.check()
    if ".warc" not in path.name:
        html = decode_html(path.read_bytes(), "")
        if html is None:
            raise UserError(f"{path}: cannot decode the page's bytes")
        typer.echo(block(pa.table({"html": [html]}))["text"][0].as_py())
        return
    counts: Counter = Counter()
    with path.open("rb") as stream:
        for batch in WarcReader(limit=limit).read(stream, str(path), "", counts):
            out = block(batch)
            for row in out.select(["url", "id", "text", *(["drop_reason"] if "drop_reason" in out.column_names
                                                           else [])]).to_pylist():
                typer.echo(json.dumps(row, ensure_ascii=False))
    skipped = {k: v for k, v in counts.items() if k not in ("warc.records", "warc.responses")}
    if skipped:
        typer.echo(f"skipped: {json.dumps(skipped)}", err=True)


@app.command()
def rehydration(
    distributions: Annotated[list[Path], typer.Option("--distributions",
                                                      help="FineWeb2-format distribution JSON file(s) or a folder")],
    max_repetitions: Annotated[int, typer.Option(min=1, help="repetitions of the best-kept cluster size")] = 10,
) -> None:
    """Print rehydration weights (language → {first cluster size: repetitions}) in FineWeb2's format."""
    from curate.rebalancing import rehydration_command

    try:
        typer.echo(rehydration_command(distributions, max_repetitions))
    except ValueError as error:
        raise UserError(str(error)) from None


@app.command()
def inspect(
    output: Annotated[str, typer.Argument(help="the output folder of a run")],
    lang: Annotated[str, typer.Option("--lang", help="the language")],
    reason: Annotated[str, typer.Option(help="a drop reason (gopher_repetition.dup_line_share) or a block name")],
    n: Annotated[int, typer.Option("-n", help="how many documents to show")] = 5,
    chars: Annotated[int, typer.Option(help="characters of text to show per document")] = 300,
) -> None:
    """Show a few documents a rule removed, with the value it measured and the threshold it applied."""
    from curate.pipeline.publishing.inspect import removed_documents

    total, documents = removed_documents(output, lang, reason, n)
    typer.echo(f"{total:,} documents removed for {reason}; showing {len(documents)}")
    for document in documents:
        measured = "" if document.measured is None else f" measured {document.measured:.4g}"
        rule = "" if document.threshold is None else f" ({document.bound} {document.threshold:g})"
        typer.echo(f"\n[{document.reason}]{measured}{rule}  {document.url}")
        if document.evidence:
            typer.echo("  " + document.evidence.replace("\n", "\n  "))
        typer.echo("  " + document.text[:chars].replace("\n", "\n  "))


config_app = typer.Typer(no_args_is_help=True, help="Language configs: import FineWeb2's, list the configured ones.")
app.add_typer(config_app, name="config")


def _write_or_print(text: str, out: Optional[Path]) -> None:
    if out is None:
        typer.echo(text, nl=False)
        return
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as error:
        raise UserError(f"cannot write {out}: {error.strerror}") from None
    typer.echo(f"wrote {out}", err=True)


@config_app.command("import-fineweb2")
def config_import_fineweb2(
    path: Annotated[Path, typer.Argument(help="a FineWeb2 config (configs/<lang_Script>.yml) or a folder of them")],
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="write here (default: print); for a folder: "
                                                                    "the folder to write <lang_Script>.yaml files "
                                                                    "into")] = None,
) -> None:
    """Convert FineWeb2 per-language configs into ours (save them under $CURATE_LANGUAGE_CONFIGS). FineWeb2's
    1,929 configs already ship with curate: import one to edit it."""
    from curate.language_configs.fineweb2 import import_fineweb2, import_fineweb2_folder

    if not path.is_dir():
        _write_or_print(import_fineweb2(path), out)
        return
    if out is None:
        raise UserError(f"{path} is a folder: give --out FOLDER to write one <lang_Script>.yaml per config into")
    written = import_fineweb2_folder(path, out)
    typer.echo(f"wrote {len(written):,} configs into {out}", err=True)


@config_app.command("list")
def config_list() -> None:
    """The languages a run accepts: reviewed configs, $CURATE_LANGUAGE_CONFIGS and FineWeb2's shipped ones."""
    from curate.language_configs.schema import available_languages, is_bundled

    for code in available_languages():
        typer.echo(f"{code}\tFineWeb2" if is_bundled(code) else f"{code}\tconfig file")


@app.command()
def calibrate(
    lang: Annotated[str, typer.Option("--lang", help="the language to calibrate, as lang_Script (fin_Latn); "
                                            "with --lid also all: every lid.176 language with a "
                                            "<lang_Script>.txt in the folders given")],
    reference: Annotated[list[Path], typer.Argument(help="reference documents: Parquet/JSONL with `text`, or text "
                                                         "files with blank-line-separated documents")],
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="write here (default: print)")] = None,
    lid: Annotated[Optional[str], typer.Option(help="derive only this LID model's threshold (ft176) from known "
                                                    "text of the language (its lines are sentences)")] = None,
    write: Annotated[bool, typer.Option("--write", help="with --lid: record the threshold in language_configs/"
                                                        "lid_thresholds.tsv and the language's config")] = False,
) -> None:
    """Write a language config whose thresholds come from the statistics of known-good documents (or, with
    --lid, the LID threshold from the score distribution of web-like documents of the language)."""
    if lid is not None:
        if out is not None:
            raise UserError("--lid prints the threshold (and --write records it); --out is for a calibrated config")
        _calibrate_lid(lang, reference, lid, write)
        return
    if write:
        raise UserError("--write goes with --lid; a calibrated config is written with --out")
    from curate.language_configs.calibration import calibrate as calibrate_config

    _write_or_print(calibrate_config(lang, reference), out)


def _calibrate_lid(code: str, reference: list[Path], model: str, write: bool) -> None:
    from curate.language_configs.lid_thresholds import calibrate_lid, describe_reference
    from curate.language_configs.reference import read_reference

    if code == "all":
        _calibrate_lid_all(reference, model, write)
        return
    sentences = [line for document in read_reference(reference) for line in document.splitlines()]
    calibration = calibrate_lid(code, sentences, describe_reference(reference), model)
    typer.echo(calibration.summary())
    if write:
        _record_lid(calibration)


def _record_lid(calibration) -> None:
    """Record a derived threshold in lid_thresholds.tsv and in the language's config file, if it has one."""
    from curate.language_configs.lid_thresholds import record, set_config_threshold
    from curate.language_configs.schema import config_path
    from curate.language_configs.validate import ConfigError

    record(calibration)
    typer.echo(f"{calibration.code}: recorded in language_configs/lid_thresholds.tsv", err=True)
    try:
        path = config_path(calibration.code)
    except ConfigError:
        return
    text = set_config_threshold(path.read_text(encoding="utf-8"), calibration.model, calibration.min_score,
                                calibration.comment())
    path.write_text(text, encoding="utf-8")
    typer.echo(f"wrote lid.min_score.{calibration.model} into {path}", err=True)


def _calibrate_lid_all(folders: list[Path], model: str, write: bool) -> None:
    """`--lang all`: every language the model labels that has no derived threshold yet and a sentence file
    (`<code>.txt`, FLORES-200's names) in one of `folders`; a language the model does not recognise in its own
    text keeps the default, said in one line."""
    from curate.language_configs.labels import ft176_labels
    from curate.language_configs.lid_thresholds import (MIN_SENTENCES, Unrecognised, calibrate_lid,
                                                        derived_thresholds, describe_reference,
                                                        record_confusions, reference_files)

    if any(not folder.is_dir() for folder in folders):
        raise UserError("--lang all takes folders of <iso639-3>_<Script>.txt sentence files (FLORES-200's layout)")
    codes = sorted(c for c in set(ft176_labels().values()) if (c, model) not in derived_thresholds())
    confused = []
    for code, path in sorted(reference_files(folders, codes).items()):
        sentences = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        if len(sentences) < MIN_SENTENCES:
            typer.echo(f"{code}: keeps the default: {path} holds {len(sentences)} sentences, fewer than "
                       f"{MIN_SENTENCES}")
            continue
        try:
            calibration = calibrate_lid(code, sentences, describe_reference([path]), model)
        except Unrecognised as error:
            typer.echo(f"{code}: keeps the default: {error}")
            confused.append(error.confusion)
            continue
        typer.echo(calibration.summary())
        if write:
            _record_lid(calibration)
    if write:
        record_confusions(confused)
        typer.echo("recorded in language_configs/lid_thresholds.tsv and lid_confusions.tsv", err=True)


@app.command()
def card(
    output: Annotated[str, typer.Argument(help="the output folder of a run")],
    lang: Annotated[str, typer.Option("--lang", help="the language")],
    repo: Annotated[Optional[str], typer.Option(help="org/name, for the loading snippet")] = None,
) -> None:
    """(Re)write the dataset card `OUT/<lang>/README.md` and its plots."""
    from curate.pipeline.publishing.card import write_card

    typer.echo(write_card(output, lang, repo_id=repo))


@app.command()
def release(
    output: Annotated[str, typer.Argument(help="the output folder of a run")],
    lang: Annotated[str, typer.Option("--lang", help="the language to publish; several (fin,swe) or all: one "
                                                      "dataset with a config per language")],
    repo: Annotated[str, typer.Option(help="the Hub dataset repo, org/name")],
    private: Annotated[bool, typer.Option("--private", help="create the repo private")] = False,
    revision: Annotated[Optional[str], typer.Option(help="branch to commit to (created if missing)")] = None,
    force: Annotated[bool, typer.Option("--force", help="release into a repo that already has files")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="list what would be uploaded; touch no network")] = False,
    squash: Annotated[bool, typer.Option("--squash", help="then squash the branch's history into one commit, so a "
                                                          "takedown leaves no old copy on the Hub (cannot be "
                                                          "undone)")] = False,
) -> None:
    """Publish the released shards, the dataset card and its images to the Hugging Face Hub (several languages,
    or all of the output's: one dataset with a config per language)."""
    from curate.pipeline.publishing.card import write_card
    from curate.pipeline.publishing.release import describe_files, release as release_language, release_files, repo_url

    if lang == "all" or "," in lang:
        _release_languages(output, lang, repo, private, revision, force, dry_run, squash)
        return
    write_card(output, lang, repo_id=repo)
    if dry_run:
        typer.echo(describe_files(release_files(output, lang)))
        return
    paths = release_language(output, lang, repo, private=private, revision=revision, force=force, squash=squash)
    typer.echo(f"uploaded {len(paths):,} files to {repo_url(repo, revision)}")


def _release_languages(output: str, lang: str, repo: str, private: bool, revision: Optional[str], force: bool,
                       dry_run: bool, squash: bool) -> None:
    from curate.pipeline.execution.storage import Output
    from curate.pipeline.publishing.card import write_card
    from curate.pipeline.publishing.languages_card import language_rows, write_languages_card
    from curate.pipeline.publishing.release import describe_files, languages_release_files, release_languages, repo_url
    from curate.pipeline.publishing.report import language_codes

    codes = language_codes(Output(output), None if lang == "all" else _languages(lang))
    released = [row["code"] for row in language_rows(Output(output), codes) if row["released"]]
    for code in codes:
        write_card(output, code, repo_id=repo)
    write_languages_card(output, codes, repo_id=repo)
    if dry_run:
        typer.echo(describe_files(languages_release_files(output, released)[0]))
        return
    paths = release_languages(output, released, repo, private=private, revision=revision, force=force, squash=squash)
    typer.echo(f"uploaded {len(paths):,} files of {len(released)} languages ({len(codes) - len(released)} released "
               f"no document) to {repo_url(repo, revision)}")


@app.command()
def optout(
    output: Annotated[str, typer.Argument(help="the output folder of a finished run")],
    list_: Annotated[list[str], typer.Option("--list", help="takedown list (file or URL): one domain, host or URL "
                                                            "prefix a line; repeatable")],
    lang: Annotated[Optional[str], typer.Option("--lang", help="only these languages (default: every one)")] = None,
) -> None:
    """Take the documents of listed domains, hosts or URL prefixes out of released shards (no rerun); the list is
    recorded so reruns apply it. Shards mix every crawl: one host may touch most of them (each is streamed)."""
    from curate.pipeline.publishing.takedown import apply_takedown

    languages = None
    if lang:
        from curate.pipeline.publishing.card import language_info
        from curate.pipeline.execution.storage import Output

        languages = [language_info(Output(output), code).code for code in _languages(lang)]
    for code, result in apply_takedown(output, list_, languages).items():
        typer.echo(f"{code}: removed {result.removed:,} documents, rewrote {len(result.rewritten):,} of "
                   f"{result.shards:,} shards (the others are unchanged)")
    typer.echo("already released? publish with `curate release --squash` so the Hub keeps no old copy", err=True)


def _register_optional_commands() -> None:
    """Commands defined next to their code (they import nothing heavy at import time)."""
    from curate.pipeline.cli.ablate import ablate
    from curate.pipeline.cli.report import report
    from curate.pipeline.cli.scorers import train_classifier, train_kenlm
    from curate.trainer.cli import extend_tokenizer, train, train_tokenizer

    app.command("report")(report)
    app.command("ablate")(ablate)
    app.command("train-classifier")(train_classifier)
    app.command("train-kenlm")(train_kenlm)
    app.command("train")(train)
    app.command("train-tokenizer")(train_tokenizer)
    app.command("extend-tokenizer")(extend_tokenizer)


_register_optional_commands()


def main() -> None:
    """Entry point: user mistakes end with one line on stderr and exit code 2, never a traceback."""
    logging.basicConfig(level=os.environ.get("CURATE_LOG", "WARNING"), format="%(levelname)s %(message)s")
    os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
    os.environ.setdefault("RAY_IGNORE_UNHANDLED_ERRORS", "1")  # a stopped run says one `error:` line, not one per task
    try:
        app()
    except UserError as error:
        typer.echo(f"error: {error}", err=True)
        sys.exit(EXIT_USER_ERROR)
    except OSError as error:
        from curate.pipeline.execution.executor import storage_error

        stop = storage_error(error)
        if stop is None:
            raise
        typer.echo(f"error: {stop}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("interrupted: rerun the same command to resume", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()

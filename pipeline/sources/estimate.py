"""What a `--dry-run` promises: the pages a selection of WARCs holds and the bytes an index selection fetches.

Common Crawl's WARCs hold about 32 responses per compressed MB, but a mirror or another crawler's WARCs may
not: the density is measured on the first `SAMPLE_BYTES` of a few of the selected files (the whole file when
it is smaller) and extrapolated by the files' sizes. An index selection fetches its records' byte ranges with
neighbours closer than `ranged.MAX_GAP` merged into one request, so the bytes to read are the merged requests'.
"""

from __future__ import annotations

import io
import logging

from warcio.archiveiterator import ArchiveIterator

from curate.pipeline.sources.crawls import Source, WarcFile
from curate.pipeline.sources.ranged import merge_spans

log = logging.getLogger("curate")

SAMPLE_BYTES = 1 << 20  # read from the start of each sampled file
SAMPLE_FILES = 4  # per crawl
RESPONSES_PER_COMPRESSED_MB = 32.0  # Common Crawl's WARCs, when no sample can be read


def request_bytes(file: WarcFile) -> int:
    """The bytes the ranged reads of an index-selected file fetch (merged requests, gaps included)."""
    spans = file.spans()
    return sum(request.length for request in merge_spans(spans)) if spans else 0


def _responses_in_prefix(data: bytes) -> tuple[int, int]:
    """(responses, bytes) of the whole records at the start of `data`: a cut-off last record is left out."""
    iterator = ArchiveIterator(io.BytesIO(data))
    responses = end = 0
    try:
        for record in iterator:
            record.content_stream().read()
            record_end = iterator.get_record_offset() + iterator.get_record_length()
            if record_end > len(data):
                break
            end = record_end
            responses += record.rec_type == "response"
    except Exception:  # noqa: BLE001 - the cut-off (or damaged) member ends the sample
        pass
    return responses, end


def responses_per_byte(source: Source, files: list[WarcFile], sample_files: int = SAMPLE_FILES,
                       sample_bytes: int = SAMPLE_BYTES) -> float:
    """Responses per compressed byte measured on the start of up to `sample_files` of `files`."""
    responses = measured = 0
    for file in files[:sample_files]:
        try:
            stream = source.open(file.path)
            try:
                data = stream.read(sample_bytes)
            finally:
                stream.close()
        except Exception as error:  # noqa: BLE001 - a file that cannot be sampled: the others (or the default)
            log.debug("cannot sample %s: %s", file.path, error)
            continue
        count, end = _responses_in_prefix(data)
        responses += count
        measured += end
    return responses / measured if measured and responses else RESPONSES_PER_COMPRESSED_MB / 1e6

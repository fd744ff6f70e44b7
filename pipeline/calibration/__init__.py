"""`curate calibrate`: thresholds read off known text of a language, computed with the pipeline's own blocks.

`config` calibrates a language config's filter thresholds from reference documents; `lid` derives lid.176's
threshold of a language (recorded in `language_configs/lid_thresholds.tsv`, which `language_configs` reads).
They live here, not in `language_configs`, because they run `blocks` (imports run downward).
"""

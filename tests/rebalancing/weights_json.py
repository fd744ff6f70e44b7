"""Reading FineWeb2's weights format back, for the tests (the package writes it: `weights_to_json`)."""

from __future__ import annotations

import json

from curate.rebalancing.step_table import StepTable, validate_step_table


def weights_from_json(text: str) -> dict[str, StepTable]:
    """Parse FineWeb2's weights format: language → step table with int keys."""
    parsed = json.loads(text)
    if not isinstance(parsed, dict):
        raise ValueError("a weights file must hold a JSON object: language → {size: repetitions}")
    return {language: validate_step_table(table) for language, table in parsed.items()}

"""How the demo prints a Jira comment (ADF): a paragraph per line, a table row per line."""

from selfservice.develop.demo import _adf_lines


def _text(text: str) -> dict[str, object]:
    return {"type": "paragraph", "content": [{"type": "text", "text": text}]}


def test_a_table_prints_one_row_per_line_with_its_cells() -> None:
    document = {
        "type": "doc",
        "version": 1,
        "content": [
            _text("Terraform planned:"),
            {
                "type": "table",
                "content": [
                    {
                        "type": "tableRow",
                        "content": [
                            {"type": "tableHeader", "content": [_text("add")]},
                            {"type": "tableHeader", "content": [_text("destroy")]},
                        ],
                    },
                    {
                        "type": "tableRow",
                        "content": [
                            {"type": "tableCell", "content": [_text("5")]},
                            {"type": "tableCell", "content": [_text("0")]},
                        ],
                    },
                ],
            },
            {"type": "bulletList", "content": [{"type": "listItem", "content": [_text("x")]}]},
        ],
    }
    assert _adf_lines(document) == [
        "Terraform planned:",
        "  | add | destroy |",
        "  | 5 | 0 |",
        "  - x",
    ]

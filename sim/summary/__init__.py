"""summary.json: its typed shape (``types``), the JSON schema published from it
(``schema``), fields by dotted path (``paths``) and its assembly from what each component
reports (``build``).  See docs/summary.md."""

"""Training the composed model: data (`data`, `synthetic`), prompt encoding (`encode`),
frozen features (`features`), the two stages (`trainer`), recipes and adapters (`recipe`).
`python -m assistant.train --help` runs it."""

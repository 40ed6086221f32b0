"""The project's own tooling: the local infrastructure, the stack, the supervisor of each app
and the sample loader. A package, so that tests and the bench import it as `scripts.<module>`
and `python -m scripts.<module>` runs it from anywhere the project is installed (pip -e)."""

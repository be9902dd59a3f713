"""``python -m detectors.evaluation skab|nab PATH``: the evaluations without the ``ehs`` entry point."""

from cli.eval_cmd import app

if __name__ == "__main__":
    app(prog_name="python -m detectors.evaluation")

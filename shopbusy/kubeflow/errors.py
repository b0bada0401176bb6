"""The Kubeflow tools' one error: a usage problem explained in one line (exit code 2)."""


class KubeflowError(Exception):
    """A usage problem with a one-line explanation (exit code 2)."""

"""The built-in controllers of Kubernetes, each a plugin for ``controllers.manager.Manager``."""

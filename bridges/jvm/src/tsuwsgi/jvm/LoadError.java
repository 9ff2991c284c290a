package tsuwsgi.jvm;

/** An app (or a class it needs) could not be loaded: the bridge reports it and exits 22. */
final class LoadError extends Exception {
  private static final long serialVersionUID = 1L;

  LoadError(String message) {
    super(message);
  }

  LoadError(String message, Throwable cause) {
    super(message, cause);
  }
}

package warden.algos.host;

/**
 * A response and who gave it: the serve worker, or {@code null} for a one-shot process (which
 * keeps nothing after it answered). A caller streaming a state remembers the worker, because
 * that worker now holds the state the response carries.
 */
public record Served(byte[] response, WorkerId worker) {}

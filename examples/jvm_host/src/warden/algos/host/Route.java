package warden.algos.host;

import java.time.Duration;
import java.util.function.Function;

/**
 * Where a request goes when what it may say depends on who answers it: a request naming a cached
 * state by sha256 only makes sense to the serve worker holding that state. The route picks the
 * process (the {@code preferred} worker when it is free), then asks {@code request} for the bytes
 * to send it, given that process's id ({@code null}: a one-shot process, which holds nothing).
 */
interface Route {
  WireFormat format();

  Served send(WorkerId preferred, Function<WorkerId, byte[]> request, Duration deadline);
}

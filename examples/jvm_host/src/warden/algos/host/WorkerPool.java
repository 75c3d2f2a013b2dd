package warden.algos.host;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Function;
import warden.algos.thrift.Request;
import warden.algos.thrift.Response;

/**
 * A fixed number of {@code serve} workers shared by any number of threads: the low-latency way to
 * call algorithms (no interpreter start-up per request, one pipe round trip).
 *
 * <p>Each worker serves one request at a time. A caller waits for a free worker within its own
 * deadline; a worker that misses the deadline is killed and replaced at once; a worker found dead
 * (it crashed, or something killed it) is replaced before it is used again. Replacement only forks
 * a process: its interpreter starts while it waits in the pool, and the first request it serves
 * pays whatever start-up is left (about 0.4 s for the console script), so choose deadlines above
 * that. Set the executable's own {@code --timeout-s} below the host deadline: then a slow
 * algorithm is answered with TIMEOUT by the worker, which keeps running, and the host deadline is
 * only the last resort.
 */
public final class WorkerPool implements Route, AutoCloseable {
  private static final long CLOSE_GRACE_MILLIS = 5_000;

  /** A place for one worker; empty after a failed start, refilled when next acquired. */
  private static final class Slot {
    volatile ServeWorker worker; // read unlocked by workerPids and the preferred-worker search
  }

  private final Executable executable;
  private final Duration defaultDeadline;
  private final BlockingQueue<Slot> idle;
  private final List<Slot> slots = new CopyOnWriteArrayList<>();
  private final AtomicLong replacements = new AtomicLong();
  private volatile boolean closed;

  public WorkerPool(Executable executable, int size, Duration defaultDeadline) {
    if (size < 1) {
      throw new IllegalArgumentException("a pool needs at least one worker");
    }
    this.executable = executable;
    this.defaultDeadline = defaultDeadline;
    this.idle = new ArrayBlockingQueue<>(size);
    for (int i = 0; i < size; i++) {
      Slot slot = new Slot();
      slot.worker = ServeWorker.start(executable);
      slots.add(slot);
      idle.add(slot);
    }
  }

  @Override
  public WireFormat format() {
    return executable.format();
  }

  /** The response bytes for one request's bytes, within the pool's default deadline. */
  public byte[] callRaw(byte[] request) {
    return callRaw(request, defaultDeadline);
  }

  public byte[] callRaw(byte[] request, Duration deadline) {
    return send(null, worker -> request, deadline).response();
  }

  /**
   * The answer to the request {@code request} builds for the worker chosen to serve it: {@code
   * preferred} when that worker is idle, else the next free one. A caller streaming a state names
   * it by sha256 to the worker that holds it and sends the state itself to any other, so a busy
   * or replaced worker costs a few bytes, never an error; without a preference this is {@link
   * #callRaw}.
   */
  @Override
  public Served send(WorkerId preferred, Function<WorkerId, byte[]> request, Duration deadline) {
    long deadlineNanos = System.nanoTime() + deadline.toNanos();
    Slot slot = acquire(preferred, deadlineNanos, deadline);
    try {
      ServeWorker worker = slot.worker;
      byte[] body = request.apply(worker.id()); // a refused request costs no worker
      try {
        return new Served(worker.call(body, deadlineNanos, deadline.toMillis()), worker.id());
      } catch (WardenException e) {
        replace(slot);
        throw e;
      }
    } finally {
      release(slot);
    }
  }

  /** A typed call: the successful response, or the exception for its error code. */
  public Response call(Request request) {
    return call(request, defaultDeadline);
  }

  public Response call(Request request, Duration deadline) {
    return Responses.decode(format(), callRaw(format().encode(request), deadline));
  }

  /** The process ids of the current workers (a replaced worker gets a new one). */
  public List<Long> workerPids() {
    List<Long> pids = new ArrayList<>();
    for (Slot slot : slots) {
      ServeWorker worker = slot.worker;
      if (worker != null) {
        pids.add(worker.pid());
      }
    }
    return pids;
  }

  /** Who the current workers are: a state cached by one of them is named to it alone. */
  public List<WorkerId> workerIds() {
    List<WorkerId> ids = new ArrayList<>();
    for (Slot slot : slots) {
      ServeWorker worker = slot.worker;
      if (worker != null) {
        ids.add(worker.id());
      }
    }
    return ids;
  }

  /** How many workers were replaced after a missed deadline or a death. */
  public long replacements() {
    return replacements.get();
  }

  private Slot acquire(WorkerId preferred, long deadlineNanos, Duration deadline) {
    if (closed) {
      throw new WardenException.PoolClosed("the pool is closed");
    }
    Slot slot = preferred == null ? null : takeIdle(preferred);
    try {
      if (slot == null) {
        slot = idle.poll(deadlineNanos - System.nanoTime(), TimeUnit.NANOSECONDS);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new WardenException.PoolClosed("interrupted while waiting for a worker");
    }
    if (slot == null) {
      throw new WardenException.DeadlineExceeded(
          "no worker became free within " + deadline.toMillis() + " ms");
    }
    if (closed) {
      idle.add(slot);
      throw new WardenException.PoolClosed("the pool is closed");
    }
    if (slot.worker == null || !slot.worker.usable()) {
      try {
        replace(slot);
        if (slot.worker == null) {
          slot.worker = ServeWorker.start(executable);
        }
      } catch (WardenException e) {
        idle.add(slot);
        throw e;
      }
    }
    return slot;
  }

  /** The slot of worker {@code preferred}, out of the idle queue; null if it is busy or gone. */
  private Slot takeIdle(WorkerId preferred) {
    for (Slot slot : slots) {
      ServeWorker worker = slot.worker;
      if (worker != null && worker.id().equals(preferred)) {
        return idle.remove(slot) ? slot : null;
      }
    }
    return null;
  }

  private void replace(Slot slot) {
    if (slot.worker != null) {
      slot.worker.kill();
      replacements.incrementAndGet();
      slot.worker = null;
    }
    if (!closed) {
      try {
        slot.worker = ServeWorker.start(executable);
      } catch (WardenException e) {
        slot.worker = null; // retried by the next caller that takes this slot
      }
    }
  }

  private void release(Slot slot) {
    if (closed && slot.worker != null) {
      slot.worker.close(CLOSE_GRACE_MILLIS);
    }
    idle.add(slot);
  }

  /** Ends every idle worker by closing its stdin; busy ones end when their call returns. */
  @Override
  public void close() {
    closed = true;
    List<Slot> drained = new ArrayList<>();
    idle.drainTo(drained);
    for (Slot slot : drained) {
      if (slot.worker != null) {
        slot.worker.close(CLOSE_GRACE_MILLIS);
      }
      idle.add(slot);
    }
  }
}

package warden.algos.host;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
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
public final class WorkerPool implements AutoCloseable {
  private static final long CLOSE_GRACE_MILLIS = 5_000;

  /** A place for one worker; empty after a failed start, refilled when next acquired. */
  private static final class Slot {
    ServeWorker worker;
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

  public WireFormat format() {
    return executable.format();
  }

  /** The response bytes for one request's bytes, within the pool's default deadline. */
  public byte[] callRaw(byte[] request) {
    return callRaw(request, defaultDeadline);
  }

  public byte[] callRaw(byte[] request, Duration deadline) {
    long deadlineNanos = System.nanoTime() + deadline.toNanos();
    Slot slot = acquire(deadlineNanos, deadline);
    try {
      return slot.worker.call(request, deadlineNanos, deadline.toMillis());
    } catch (WardenException e) {
      replace(slot);
      throw e;
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

  /** How many workers were replaced after a missed deadline or a death. */
  public long replacements() {
    return replacements.get();
  }

  private Slot acquire(long deadlineNanos, Duration deadline) {
    if (closed) {
      throw new WardenException.PoolClosed("the pool is closed");
    }
    Slot slot;
    try {
      slot = idle.poll(deadlineNanos - System.nanoTime(), TimeUnit.NANOSECONDS);
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

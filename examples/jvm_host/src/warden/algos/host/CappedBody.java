package warden.algos.host;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.http.HttpResponse.BodySubscriber;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.OpenOption;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.Flow;

/**
 * A response body taken in, to a file or to memory, never past a limit: the bytes the manifest's
 * size still allows for an artifact, a small bound for a release record. A server (or anything
 * between) that sends more gets its body cut off at the limit and the exchange cancelled, so a
 * download never appends past the size it was checked against, and a record never fills memory.
 * Once cancelled, late buffers are dropped, not written behind the next attempt's back.
 */
final class CappedBody<T> implements BodySubscriber<T> {
  /** The body went past its limit; what came before it was kept. */
  static final class TooLong extends IOException {
    private static final long serialVersionUID = 1L;

    TooLong(long limit) {
      super("the body is longer than the " + limit + " bytes expected: cut off there");
    }
  }

  private interface Sink<T> {
    void write(ByteBuffer bytes) throws IOException;

    T finish() throws IOException;

    void abandon();
  }

  private interface Opener<T> {
    Sink<T> open() throws IOException;
  }

  private final Opener<T> opener;
  private final long limit;
  private final CompletableFuture<T> result = new CompletableFuture<>();
  private Flow.Subscription subscription;
  private Sink<T> sink;
  private long taken;
  private volatile boolean done;

  private CappedBody(Opener<T> opener, long limit) {
    this.opener = opener;
    this.limit = limit;
  }

  /** At most {@code limit} bytes into {@code file}, opened with {@code options}. */
  static CappedBody<String> toFile(Path file, long limit, Set<OpenOption> options) {
    return new CappedBody<>(() -> new FileSink(FileChannel.open(file, options)), limit);
  }

  /** At most {@code limit} bytes, in memory. */
  static CappedBody<byte[]> toBytes(long limit) {
    return new CappedBody<>(MemorySink::new, limit);
  }

  private static final class FileSink implements Sink<String> {
    private final FileChannel channel;

    FileSink(FileChannel channel) {
      this.channel = channel;
    }

    @Override
    public void write(ByteBuffer bytes) throws IOException {
      while (bytes.hasRemaining()) {
        channel.write(bytes);
      }
    }

    @Override
    public String finish() throws IOException {
      channel.close();
      return "";
    }

    @Override
    public void abandon() {
      try {
        channel.close();
      } catch (IOException e) {
        // the exchange failed already; that is what is reported
      }
    }
  }

  private static final class MemorySink implements Sink<byte[]> {
    private final ByteArrayOutputStream out = new ByteArrayOutputStream();

    @Override
    public void write(ByteBuffer bytes) {
      byte[] chunk = new byte[bytes.remaining()];
      bytes.get(chunk);
      out.write(chunk, 0, chunk.length);
    }

    @Override
    public byte[] finish() {
      return out.toByteArray();
    }

    @Override
    public void abandon() {}
  }

  @Override
  public CompletionStage<T> getBody() {
    return result;
  }

  @Override
  public void onSubscribe(Flow.Subscription subscription) {
    this.subscription = subscription;
    try {
      sink = opener.open();
    } catch (IOException | RuntimeException e) {
      done = true;
      subscription.cancel();
      result.completeExceptionally(e);
      return;
    }
    subscription.request(1);
  }

  @Override
  public void onNext(List<ByteBuffer> buffers) {
    if (done) {
      return;
    }
    try {
      for (ByteBuffer buffer : buffers) {
        long room = limit - taken;
        if (buffer.remaining() > room) {
          ByteBuffer head = buffer.slice();
          head.limit((int) room);
          sink.write(head);
          taken = limit;
          fail(new TooLong(limit));
          return;
        }
        taken += buffer.remaining();
        sink.write(buffer);
      }
    } catch (IOException | RuntimeException e) {
      fail(e);
      return;
    }
    subscription.request(1);
  }

  @Override
  public void onError(Throwable error) {
    if (done) {
      return;
    }
    done = true;
    if (sink != null) {
      sink.abandon();
    }
    result.completeExceptionally(error);
  }

  @Override
  public void onComplete() {
    if (done) {
      return;
    }
    done = true;
    try {
      result.complete(sink.finish());
    } catch (IOException e) {
      result.completeExceptionally(e);
    }
  }

  /**
   * Ends the body from outside (the exchange was given up): the file is closed, so nothing more
   * is written to it, whatever the connection still delivers.
   */
  void stop() {
    if (done) {
      return;
    }
    done = true;
    if (sink != null) {
      sink.abandon();
    }
    result.completeExceptionally(new IOException("the exchange was given up"));
  }

  private void fail(Exception error) {
    done = true;
    subscription.cancel();
    sink.abandon();
    result.completeExceptionally(error);
  }
}

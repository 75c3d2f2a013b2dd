package warden.algos.host;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpHeaders;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpResponse.BodyHandler;
import java.net.http.HttpResponse.BodySubscribers;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.OpenOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * GETs through presigned URLs with the JDK's {@link HttpClient}: no AWS SDK, no credentials on the
 * node. One attempt per call; {@link Backoff} decides about the next one.
 *
 * <p>Failures that a retry may cure (connection cut or stalled, 5xx, 408, 429) are {@link
 * IOException}s; the ones it cannot (403: the URL expired or was signed for another host, 404:
 * the object is gone) are {@link PullException}s, so a node with a stale plan fails at once
 * instead of backing off for minutes. URLs in messages lose their query: it is the signature.
 */
final class Downloader {
  private static final Pattern CONTENT_RANGE = Pattern.compile("bytes (\\d+)-(\\d+)/(\\d+|\\*)");
  private static final Pattern S3_CODE = Pattern.compile("<Code>([^<]{1,64})</Code>");
  private static final long POLL_MILLIS = 100;
  /** A release record is a few KB: more is not one, and is not held in memory. */
  static final long MAX_RECORD_BYTES = 1 << 20;

  private final HttpClient client;
  private final Duration idleTimeout;

  Downloader(Duration idleTimeout) {
    this.idleTimeout = idleTimeout;
    // HTTP/1.1: on http:// URLs the default (HTTP/2) would first try an h2c upgrade, which
    // S3-compatible servers answer in varied ways; S3 itself speaks HTTP/1.1.
    this.client =
        HttpClient.newBuilder()
            .version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(idleTimeout)
            .followRedirects(HttpClient.Redirect.NORMAL)
            .build();
  }

  /** A small document (the release record), whole, in memory, within the idle timeout. */
  byte[] fetch(URI url) throws IOException, PullException, InterruptedException {
    HttpRequest request = HttpRequest.newBuilder(url).GET().build();
    CompletableFuture<HttpResponse<byte[]>> exchange =
        client.sendAsync(request, info -> CappedBody.toBytes(MAX_RECORD_BYTES));
    HttpResponse<byte[]> response;
    try {
      response = exchange.get(idleTimeout.toMillis(), TimeUnit.MILLISECONDS);
    } catch (TimeoutException e) {
      throw new IOException("no answer within " + Backoff.seconds(idleTimeout) + " s", e);
    } catch (ExecutionException e) {
      if (e.getCause() instanceof CappedBody.TooLong) {
        throw new PullException(
            "the document at " + shown(url) + " is over " + MAX_RECORD_BYTES + " bytes: not a"
                + " release record");
      }
      throw unwrap(e);
    } finally {
      exchange.cancel(true);
    }
    if (response.statusCode() != 200) {
      fail(url, response.statusCode(), new String(response.body(), StandardCharsets.UTF_8));
    }
    return response.body();
  }

  /**
   * Appends the rest of {@code url}'s object to {@code part}: from byte {@code size(part)} with a
   * {@code Range} header when part of it is there already (206 with a Content-Range that starts
   * exactly there: append), or from scratch when the server ignores the range (200: truncate
   * first). Bytes written, even by an attempt that then fails, are added to {@code written}. The
   * part never grows past {@code expected} bytes (the manifest's size): a longer body is cut off
   * there and the attempt fails ({@link CappedBody}); the part file is opened without following a
   * symlink.
   *
   * <p>The body goes straight to the file as it arrives, so a cut connection leaves everything
   * received so far for the next attempt to resume from. A stall (no new byte for the idle
   * timeout, headers included) cancels the exchange: without that, a half-open connection would
   * hold the node's lock forever.
   */
  void resume(URI url, Path part, long expected, AtomicLong written)
      throws IOException, PullException, InterruptedException {
    long have = Files.exists(part) ? Files.size(part) : 0;
    HttpRequest.Builder request = HttpRequest.newBuilder(url).GET();
    if (have > 0) {
      request.header("Range", "bytes=" + have + "-");
    }
    AtomicLong writingFrom = new AtomicLong(-1); // set once the headers say how the body fits
    AtomicReference<CappedBody<String>> body = new AtomicReference<>();
    BodyHandler<String> handler =
        info -> {
          Set<OpenOption> options = fit(info.statusCode(), info.headers(), have);
          if (options == null) {
            // an error document (small XML) is kept for the message; a 2xx body that does not
            // fit (a range other than the one asked for) may be the whole artifact: dropped
            return info.statusCode() >= 300
                ? BodySubscribers.ofString(StandardCharsets.UTF_8)
                : BodySubscribers.replacing("");
          }
          long from = info.statusCode() == 206 ? have : 0;
          writingFrom.set(from);
          body.set(CappedBody.toFile(part, Math.max(0, expected - from), options));
          return body.get();
        };
    CompletableFuture<HttpResponse<String>> exchange = client.sendAsync(request.build(), handler);
    try {
      HttpResponse<String> response = awaitWhileGrowing(exchange, part);
      int status = response.statusCode();
      if (fit(status, response.headers(), have) == null) {
        if (status == 206 || status == 416) {
          Files.deleteIfExists(part); // the part does not fit the object: start over next time
        }
        if (status == 206) {
          throw new IOException(
              "asked for bytes "
                  + have
                  + "-, got "
                  + response.headers().firstValue("Content-Range").orElse("no Content-Range"));
        }
        fail(url, status, response.body());
      }
    } finally {
      CappedBody<String> taking = body.get();
      if (taking != null) {
        taking.stop(); // whatever the connection still delivers is not written
      }
      long from = writingFrom.get();
      if (from >= 0 && Files.exists(part)) {
        written.addAndGet(Math.max(0, Files.size(part) - from));
      }
    }
  }

  /** How to open the part file for this response; null if the body is not the object's bytes. */
  private static Set<OpenOption> fit(int status, HttpHeaders headers, long have) {
    if (status == 200) {
      return Set.of(
          StandardOpenOption.CREATE,
          StandardOpenOption.WRITE,
          StandardOpenOption.TRUNCATE_EXISTING,
          LinkOption.NOFOLLOW_LINKS);
    }
    if (status == 206) {
      Matcher range = CONTENT_RANGE.matcher(headers.firstValue("Content-Range").orElse(""));
      if (range.matches() && Long.parseLong(range.group(1)) == have) {
        return Set.of(
            StandardOpenOption.CREATE,
            StandardOpenOption.WRITE,
            StandardOpenOption.APPEND,
            LinkOption.NOFOLLOW_LINKS);
      }
    }
    return null;
  }

  private HttpResponse<String> awaitWhileGrowing(
      CompletableFuture<HttpResponse<String>> exchange, Path part)
      throws IOException, InterruptedException {
    long lastSize = -1;
    long lastProgress = System.nanoTime();
    try {
      while (true) {
        try {
          return exchange.get(POLL_MILLIS, TimeUnit.MILLISECONDS);
        } catch (TimeoutException stillRunning) {
          long size = Files.exists(part) ? Files.size(part) : 0;
          if (size != lastSize) {
            lastSize = size;
            lastProgress = System.nanoTime();
          } else if (System.nanoTime() - lastProgress > idleTimeout.toNanos()) {
            throw new IOException(
                "no data for " + Backoff.seconds(idleTimeout) + " s: the connection stalled");
          }
        }
      }
    } catch (ExecutionException e) {
      throw unwrap(e);
    } finally {
      // Since JDK 16 cancelling sendAsync's future aborts the exchange, so a stalled response
      // cannot wake up later and append to the part file behind the next attempt's back (the
      // stall case in tests/test_jvm_pull.py fails without this line). Were it to, the sha256
      // check would still refuse the result.
      exchange.cancel(true);
    }
  }

  private static IOException unwrap(ExecutionException e) {
    return e.getCause() instanceof IOException io ? io : new IOException(e.getCause());
  }

  /** A URL for a message: without its query, which is the signature. */
  private static String shown(URI url) {
    return url.getScheme() + "://" + url.getRawAuthority() + url.getRawPath();
  }

  private static void fail(URI url, int status, String body) throws IOException, PullException {
    Matcher code = S3_CODE.matcher(body == null ? "" : body);
    String what =
        "HTTP " + status + (code.find() ? " " + code.group(1) : "") + " from " + shown(url);
    if (status == 400 || status == 403 || status == 404 || status == 410) {
      throw new PullException(
          what + ": the presigned URL expired, or the object is gone; make a fresh plan "
              + "(warden-algos release presign --properties)");
    }
    throw new IOException(what); // 5xx, 408, 429, a range that does not fit, ...
  }
}

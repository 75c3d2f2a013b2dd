package warden.algos.host;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Queue;
import java.util.Random;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import warden.algos.thrift.DetectPayload;
import warden.algos.thrift.Request;
import warden.algos.thrift.Response;

/**
 * What scoring the newest point of a series costs a Java caller, stateless versus streaming,
 * through a pool of serve workers: (a) today's call with the whole history (30 days at one
 * minute, 43,200 points, packed, band included) and (b) a {@link SeriesStream} call with one new
 * point and the state, by reference (the worker's cache), by reference both ways (sha256 only: the
 * answer names the new state, no bytes come back) and by bytes.
 *
 * <pre>
 * java -cp CP warden.algos.host.StatefulBenchmark [--command CMD] [--algorithms ksigma,...]
 *      [--workers 2] [--history 43200] [--calls 2000] [--stateless-calls 50] [--format F]
 *      [--option ARG]... [--json FILE] [--quick]
 * </pre>
 *
 * Every timing covers what the host does: encode, the round trip, decode into primitive arrays
 * (and, streaming, the sha256 check of the state that came back). One caller thread; each row
 * stops at its call count or after {@value #ROW_SECONDS} s, whichever comes first, and the
 * streaming rows take turns in blocks of {@value #BLOCK} calls so that machine noise hits them
 * alike. Profiled by-reference loops (bytes back, and sha256 only) then split a call into Java
 * encode, Java decode, the executable's own handling (its per-request log's {@code elapsed_ms})
 * and the rest (pipes, framing, the serve loop and its logging).
 */
public final class StatefulBenchmark {
  private static final long T0 = 1_700_000_000L;
  private static final Duration DEADLINE = Duration.ofSeconds(300);
  private static final int ROW_SECONDS = 20;
  private static final int BLOCK = 50;
  private static final Pattern ELAPSED = Pattern.compile("\"elapsed_ms\":([0-9.eE+-]+)");

  private final String command;
  private final WireFormat format;
  private final int workers;
  private final int history;
  private final int calls;
  private final int statelessCalls;
  private final List<String> options;
  private final Queue<Double> handled = new ConcurrentLinkedQueue<>();
  private final StringBuilder json = new StringBuilder();

  private StatefulBenchmark(
      String command, WireFormat format, int workers, int history, int calls, int statelessCalls,
      List<String> options) {
    this.command = command;
    this.format = format;
    this.workers = workers;
    this.history = history;
    this.calls = calls;
    this.statelessCalls = statelessCalls;
    this.options = options;
  }

  public static void main(String[] args) throws Exception {
    String command = System.getenv().getOrDefault("WARDEN_ALGOS_COMMAND", "warden-algos");
    List<String> algorithms = List.of("ksigma");
    List<WireFormat> formats = List.of(WireFormat.THRIFT_COMPACT);
    int workers = 2;
    int history = 43_200;
    int calls = 2_000;
    int statelessCalls = 50;
    Path jsonOut = null;
    List<String> options = new ArrayList<>();
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--command" -> command = args[++i];
        case "--algorithms" -> algorithms = List.of(args[++i].split(","));
        case "--format" ->
            formats = Arrays.stream(args[++i].split(",")).map(WireFormat::fromCliName).toList();
        case "--workers" -> workers = Integer.parseInt(args[++i]);
        case "--history" -> history = Integer.parseInt(args[++i]);
        case "--calls" -> calls = Integer.parseInt(args[++i]);
        case "--stateless-calls" -> statelessCalls = Integer.parseInt(args[++i]);
        case "--option" -> options.add(args[++i]);
        case "--json" -> jsonOut = Path.of(args[++i]);
        case "--quick" -> {
          calls = 200;
          statelessCalls = 10;
        }
        default -> throw new IllegalArgumentException("unknown option " + args[i]);
      }
    }
    System.out.printf(
        "JVM host -> %s %s, %d pooled serve workers, one caller thread, %d-point history%n",
        command, String.join(" ", options), workers, history);
    System.out.printf(
        "%-14s %-15s %-38s %6s %10s %10s %10s %9s %9s%n",
        "algorithm", "format", "call", "calls", "median ms", "p90 ms", "p99 ms", "bytes out",
        "bytes in");
    StringBuilder rows = new StringBuilder();
    for (WireFormat format : formats) {
      StatefulBenchmark bench =
          new StatefulBenchmark(command, format, workers, history, calls, statelessCalls, options);
      for (String algorithm : algorithms) {
        bench.run(algorithm.trim());
      }
      rows.append(rows.length() == 0 ? "" : ",").append(bench.json);
    }
    if (jsonOut != null) {
      Files.writeString(
          jsonOut,
          "{\"command\":" + MiniJson.quote(command) + ",\"options\":" + strings(options)
              + ",\"workers\":" + workers + ",\"history_points\":" + history + ",\"rows\":["
              + rows + "]}\n");
    }
  }

  // ------------------------------------------------------------------------------ one algorithm

  private void run(String algorithm) {
    Series series = Series.minutes(history + calls + 500, algorithm.hashCode());
    Executable executable =
        Executable.of(command, format)
            .withOptions(options.toArray(String[]::new))
            .withStderr(this::logLine);
    try (WorkerPool pool = new WorkerPool(executable, workers, DEADLINE)) {
      Trainer trainer = Trainer.pooled(pool, DEADLINE);
      double[] stateless = stateless(pool, algorithm, series);

      double[] fits = new double[Math.max(1, Math.min(5, statelessCalls))];
      SeriesStream reference = null;
      for (int i = 0; i < fits.length; i++) {
        long start = System.nanoTime();
        reference = trainer.fitStream(algorithm, "{}", series.dimensions(), series.times(history),
            series.values(history));
        fits[i] = (System.nanoTime() - start) / 1e6;
      }
      Arrays.sort(fits);
      TrainedModel fitted = reference.model();
      byte[] fitRequest = TrainedWire.of(format).fitRequest(algorithm, "{}", series.dimensions(),
          series.times(history), series.values(history));
      row(algorithm, "fit, whole history", fits, fitRequest.length, answerSize(pool, fitRequest));

      TrainedWire wire = TrainedWire.of(format);
      long[] one = {series.times[history]};
      double[] oneValue = {series.values[history]};
      int byRef = wire.detectRequest(fitted, one, oneValue, true, true).length;
      byte[] asBytes = wire.detectRequest(fitted, one, oneValue, false, true);
      int byBytes = asBytes.length;
      int answer = answerSize(pool, asBytes);
      SeriesStream asBytesStream = trainer.stream(fitted, StatePassing.BY_BYTES);
      // every by-reference stream starts from the fit, on the worker that holds it
      WorkerId fitWorker = reference.holder();
      SeriesStream noBandStream =
          new SeriesStream(trainer.withoutBand(), fitted, fitWorker, StatePassing.BY_REFERENCE);
      SeriesStream sha256OnlyStream =
          new SeriesStream(trainer, fitted, fitWorker, StatePassing.BY_REFERENCE_SHA256_ONLY);
      List<double[]> streamed =
          stream(List.of(reference, asBytesStream, noBandStream, sha256OnlyStream), series);
      double[] refMs = streamed.get(0);
      double[] bytesMs = streamed.get(1);
      double[] noBand = streamed.get(2);
      double[] sha256OnlyMs = streamed.get(3);
      SeriesStream.Stats stats = reference.stats();
      SeriesStream.Stats sha256OnlyStats = sha256OnlyStream.stats();
      // its answer: the new state's sha256, no bytes (asked with the state's bytes, so that any
      // worker answers it as the holder does)
      int sha256OnlyAnswer =
          answerSize(pool, wire.detectRequest(fitted, null, one, oneValue, true, true));
      int sha256OnlyRequest =
          wire.detectRequest(fitted, fitted.sha256(), one, oneValue, true, true).length;
      row(algorithm, "stream 1 point, state by reference", refMs, byRef, answer);
      row(algorithm, "stream 1 point, state as bytes", bytesMs, byBytes, answer);
      row(algorithm, "stream 1 point, by reference, no band", noBand,
          wire.detectRequest(fitted, one, oneValue, true, false).length,
          answerSize(pool, wire.detectRequest(fitted, one, oneValue, false, false)));
      row(algorithm, "stream by reference, sha256 only", sha256OnlyMs, sha256OnlyRequest,
          sha256OnlyAnswer);

      Profile profile = profile(pool, wire, fitted, series, false);
      Profile sha256OnlyProfile = profile(pool, wire, fitted, series, true);
      TrainedModel shortFit = trainer.fit(algorithm, "{}", series.dimensions(),
          series.times(history / 4), series.values(history / 4));
      double ratioRef = median(stateless) / median(refMs);
      double ratioBytes = median(stateless) / median(bytesMs);
      double ratioSha256Only = median(stateless) / median(sha256OnlyMs);
      System.out.printf(
          "  %s %s: stateless/streaming %.1fx by reference (target >= 50x), %.1fx by bytes; "
              + "streaming median %.3f ms (target < 0.3 ms); state %d bytes after a %d-point fit, "
              + "%d after %d points, %d after streaming %d more; %d of %d calls by reference%n",
          algorithm, format.cliName, ratioRef, ratioBytes, median(refMs), fitted.stateSize(),
          history, shortFit.stateSize(), history / 4, reference.model().stateSize(),
          stats.calls(), stats.byReference(), stats.calls());
      System.out.printf(
          "  by reference, sha256 only: median %.3f ms, stateless/that %.1fx; %d of %d calls by "
              + "reference, %d fetched the bytes back (replay limit %d), %d points replayed%n",
          median(sha256OnlyMs), ratioSha256Only, sha256OnlyStats.byReference(),
          sha256OnlyStats.calls(), sha256OnlyStats.fetches(), SeriesStream.DEFAULT_REPLAY_LIMIT,
          sha256OnlyStats.replayed());
      printProfile("a by-reference call", profile);
      printProfile("a sha256-only call", sha256OnlyProfile);
      appendJson(algorithm, stateless, fits, refMs, bytesMs, noBand, byRef, byBytes, fitted,
          shortFit, reference.model(), profile, ratioRef, ratioBytes, stats);
      json.append(",\"stream_by_reference_sha256_only_ms\":").append(stats(sha256OnlyMs))
          .append(",\"ratio_stateless_to_stream_by_reference_sha256_only\":")
          .append(round(ratioSha256Only))
          .append(",\"sha256_only_bytes\":{\"request\":").append(sha256OnlyRequest)
          .append(",\"answer\":").append(sha256OnlyAnswer).append('}')
          .append(",\"sha256_only_calls\":{\"calls\":").append(sha256OnlyStats.calls())
          .append(",\"by_reference\":").append(sha256OnlyStats.byReference())
          .append(",\"fetches\":").append(sha256OnlyStats.fetches())
          .append(",\"replayed_points\":").append(sha256OnlyStats.replayed())
          .append(",\"replay_limit\":").append(SeriesStream.DEFAULT_REPLAY_LIMIT).append('}')
          .append(",\"profile_sha256_only_median_ms\":").append(profileJson(sha256OnlyProfile))
          .append('}');
    }
  }

  /** (a): a detect request with the whole history, encoded, sent and decoded on every call. */
  private double[] stateless(WorkerPool pool, String algorithm, Series series) {
    Request request =
        new Request()
            .setInterface_name("detect")
            .setAlgorithm(algorithm)
            .setParams_json("{}")
            .setPacked_arrays(true)
            .setDetect(
                new DetectPayload()
                    .setDimensions(series.dimensions())
                    .setTimestamps_packed(PackedArrays.pack(series.times(history)))
                    .setValues_packed(PackedArrays.pack(series.values(history))));
    Runnable call =
        () -> {
          Response response = Responses.decode(format, pool.callRaw(format.encode(request)));
          if (PackedArrays.doubles(response.getDetect().bufferForExpected_packed()).length
              != history) {
            throw new IllegalStateException("the band does not cover the history");
          }
        };
    for (int i = 0; i < 3; i++) {
      call.run();
    }
    double[] ms = time(statelessCalls, i -> call.run());
    byte[] body = format.encode(request);
    row(algorithm, "stateless, whole history", ms, body.length, pool.callRaw(body).length);
    return ms;
  }

  /**
   * (b): one point a call through each stream, taking turns in blocks of {@value #BLOCK} calls
   * (so that machine noise hits them alike, yet a call mostly follows one of its own stream on
   * its worker: a call right after another kind of call there pays for what that one allocated),
   * after a warm-up on the points before; sorted ms per stream.
   */
  private List<double[]> stream(List<SeriesStream> streams, Series series) {
    int warmUp = 300;
    for (int i = 0; i < warmUp; i++) {
      for (SeriesStream stream : streams) {
        stream.next(series.times[history + i], series.values[history + i]);
      }
    }
    int from = history + warmUp;
    int count = Math.min(calls, series.times.length - from);
    double[][] ms = new double[streams.size()][count];
    long budgetEnd = System.nanoTime() + ROW_SECONDS * 1_000_000_000L;
    int done = 0;
    while (done < count && (done == 0 || System.nanoTime() < budgetEnd)) {
      int end = Math.min(count, done + BLOCK);
      for (int s = 0; s < streams.size(); s++) {
        for (int i = done; i < end; i++) {
          long start = System.nanoTime();
          streams.get(s).next(series.times[from + i], series.values[from + i]);
          ms[s][i] = (System.nanoTime() - start) / 1e6;
        }
      }
      done = end;
    }
    List<double[]> sorted = new ArrayList<>();
    for (double[] each : ms) {
      double[] timed = Arrays.copyOf(each, done);
      Arrays.sort(timed);
      sorted.add(timed);
    }
    return sorted;
  }

  /** The size of the answer to {@code request}. */
  private int answerSize(WorkerPool pool, byte[] request) {
    return pool.send(null, worker -> request, DEADLINE).response().length;
  }

  // ---------------------------------------------------------------------------------- profile

  private static void printProfile(String what, Profile profile) {
    System.out.printf(
        "  where %s goes (medians, ms): Java encode %.3f, Java decode + sha256 %.3f, "
            + "executable's handling %s, pipes + framing + serve loop %s, of %.3f%n",
        what, profile.encode, profile.decode, orUnknown(profile.handled),
        orUnknown(profile.rest()), profile.total);
  }

  /** Medians, in ms, of the parts of a by-reference call with one new point. */
  private record Profile(double encode, double decode, double handled, double total) {
    double rest() {
      return total - encode - decode - handled;
    }
  }

  /**
   * The parts of a by-reference call, as {@link SeriesStream} makes it: the state's bytes back
   * (checked against their sha256), or with {@code sha256Only} the new state's sha256 alone.
   */
  private Profile profile(
      WorkerPool pool, TrainedWire wire, TrainedModel fitted, Series series, boolean sha256Only) {
    int count = Math.min(calls, 1000);
    double[] encode = new double[count];
    double[] decode = new double[count];
    double[] total = new double[count];
    WorkerId holder = null; // the first call sends the bytes; the worker it reaches then holds it
    TrainedModel model = fitted;
    String sha256 = fitted.sha256();
    sleep(300); // let the log lines of earlier calls through first
    handled.clear();
    for (int i = 0; i < count; i++) {
      long[] t = {series.times[history + i]};
      double[] v = {series.values[history + i]};
      TrainedModel current = model;
      String named = sha256;
      WorkerId expected = holder;
      long start = System.nanoTime();
      long[] encoded = new long[1];
      Served served =
          pool.send(
              holder,
              worker -> {
                boolean byReference = worker.equals(expected);
                if (sha256Only && byReference != (expected != null)) {
                  throw new IllegalStateException("the holder was busy: no one else calls");
                }
                byte[] body =
                    sha256Only
                        ? wire.detectRequest(current, byReference ? named : null, t, v, true, true)
                        : wire.detectRequest(current, t, v, byReference, true);
                encoded[0] = System.nanoTime();
                return body;
              },
              DEADLINE);
      long sent = System.nanoTime();
      TrainedWire.DetectAnswer answer = wire.detectAnswer(served.response());
      if (answer.state() != null) {
        if (!Sha256.of(answer.state()).equals(answer.sha256())) {
          throw new IllegalStateException("state damaged in transit");
        }
        model = model.after(t, answer.state(), answer.sha256());
      } else if (!sha256Only) {
        throw new IllegalStateException("no state in the answer");
      }
      sha256 = answer.sha256();
      long end = System.nanoTime();
      holder = served.worker();
      encode[i] = (encoded[0] - start) / 1e6;
      decode[i] = (end - sent) / 1e6;
      total[i] = (end - start) / 1e6;
    }
    sleep(300); // the logs of the last calls are still on their way through the stderr pumps
    double[] fromLogs = handled.stream().mapToDouble(Double::doubleValue).toArray();
    Arrays.sort(encode);
    Arrays.sort(decode);
    Arrays.sort(total);
    Arrays.sort(fromLogs);
    return new Profile(median(encode), median(decode),
        fromLogs.length == 0 ? Double.NaN : median(fromLogs),
        median(total));
  }

  /** A serve worker's log line: keep its {@code elapsed_ms} (the executable's own handling). */
  private void logLine(String line) {
    Matcher matcher = ELAPSED.matcher(line);
    if (matcher.find()) {
      handled.add(Double.parseDouble(matcher.group(1)));
    }
  }

  // ----------------------------------------------------------------------------------- output

  private void row(String algorithm, String call, double[] ms, int bytesOut, int bytesIn) {
    System.out.printf(
        "%-14s %-15s %-38s %6d %10s %10s %10s %9d %9d%n",
        algorithm, format.cliName, call, ms.length, fmt(median(ms)), fmt(percentile(ms, 90)),
        fmt(percentile(ms, 99)), bytesOut, bytesIn);
  }

  /** A row's figures, but for the sha256-only ones, which the caller appends before the '}'. */
  private void appendJson(
      String algorithm, double[] stateless, double[] fits, double[] refMs, double[] bytesMs,
      double[] noBand, int byRef, int byBytes, TrainedModel fitted, TrainedModel shortFit,
      TrainedModel streamed, Profile profile, double ratioRef, double ratioBytes,
      SeriesStream.Stats stats) {
    json.append(json.length() == 0 ? "" : ",")
        .append("{\"algorithm\":").append(MiniJson.quote(algorithm))
        .append(",\"format\":\"").append(format.cliName).append('"')
        .append(",\"stateless_whole_history_ms\":").append(stats(stateless))
        .append(",\"fit_whole_history_ms\":").append(stats(fits))
        .append(",\"stream_by_reference_ms\":").append(stats(refMs))
        .append(",\"stream_by_bytes_ms\":").append(stats(bytesMs))
        .append(",\"stream_by_reference_no_band_ms\":").append(stats(noBand))
        .append(",\"request_bytes\":{\"by_reference\":").append(byRef)
        .append(",\"by_bytes\":").append(byBytes).append('}')
        .append(",\"ratio_stateless_to_stream_by_reference\":").append(round(ratioRef))
        .append(",\"ratio_stateless_to_stream_by_bytes\":").append(round(ratioBytes))
        .append(",\"state_bytes\":{\"fit_").append(history).append("\":").append(fitted.stateSize())
        .append(",\"fit_").append(history / 4).append("\":").append(shortFit.stateSize())
        .append(",\"after_streaming\":").append(streamed.stateSize()).append('}')
        .append(",\"by_reference_calls\":").append(stats.byReference())
        .append(",\"of_calls\":").append(stats.calls())
        .append(",\"profile_median_ms\":").append(profileJson(profile)); // the caller closes it
  }

  private static String profileJson(Profile profile) {
    return "{\"java_encode\":" + round(profile.encode) + ",\"java_decode_and_sha256\":"
        + round(profile.decode) + ",\"executable_handling\":" + round(profile.handled)
        + ",\"pipes_framing_serve_loop\":" + round(profile.rest()) + ",\"total\":"
        + round(profile.total) + "}";
  }

  private static String stats(double[] ms) {
    return "{\"calls\":" + ms.length + ",\"median\":" + round(median(ms)) + ",\"p90\":"
        + round(percentile(ms, 90)) + ",\"p99\":" + round(percentile(ms, 99)) + "}";
  }

  private static String round(double value) {
    return Double.isNaN(value) ? "null" : String.format(Locale.ROOT, "%.4f", value);
  }

  private static String strings(List<String> items) {
    return "[" + String.join(",", items.stream().map(MiniJson::quote).toList()) + "]";
  }

  /** NaN: no request log to read (the workers run at --log-level warning or above). */
  private static String orUnknown(double ms) {
    return Double.isNaN(ms) ? "n/a (no request log)" : fmt(ms);
  }

  private static String fmt(double ms) {
    return String.format(Locale.ROOT, "%.3f", ms);
  }

  // ------------------------------------------------------------------------------------ timing

  @FunctionalInterface
  private interface Call {
    void run(int i);
  }

  /** Up to {@code count} timed calls, fewer if they pass {@value #ROW_SECONDS} s; sorted ms. */
  private static double[] time(int count, Call call) {
    double[] ms = new double[count];
    long budgetEnd = System.nanoTime() + ROW_SECONDS * 1_000_000_000L;
    int done = 0;
    while (done < count && (done < 5 || System.nanoTime() < budgetEnd)) {
      long start = System.nanoTime();
      call.run(done);
      ms[done++] = (System.nanoTime() - start) / 1e6;
    }
    double[] timed = Arrays.copyOf(ms, done);
    Arrays.sort(timed);
    return timed;
  }

  private static double median(double[] sorted) {
    return percentile(sorted, 50);
  }

  private static double percentile(double[] sorted, double p) {
    int index = (int) Math.ceil(p / 100.0 * sorted.length) - 1;
    return sorted[Math.max(0, Math.min(sorted.length - 1, index))];
  }

  private static void sleep(long millis) {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  // ------------------------------------------------------------------------------------ series

  /** A minute-resolution series: a daily wave, noise and a spike now and then. */
  private record Series(long[] times, double[] values) {
    static Series minutes(int n, long seed) {
      Random random = new Random(seed);
      long[] times = new long[n];
      double[] values = new double[n];
      for (int i = 0; i < n; i++) {
        times[i] = T0 + 60L * i;
        values[i] = 100 + 10 * Math.sin(2 * Math.PI * i / 1440.0) + random.nextGaussian()
            + (i % 997 == 500 ? 25 : 0);
      }
      return new Series(times, values);
    }

    List<String> dimensions() {
      return List.of("host=bench", "metric=latency");
    }

    long[] times(int n) {
      return Arrays.copyOf(times, n);
    }

    double[] values(int n) {
      return Arrays.copyOf(values, n);
    }
  }
}

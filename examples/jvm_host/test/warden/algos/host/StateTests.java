package warden.algos.host;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.apache.thrift.TException;
import warden.algos.thrift.ErrorCode;
import warden.algos.thrift.Request;
import warden.algos.thrift.Response;

/**
 * Trained algorithms from Java ({@link Trainer}, {@link SeriesStream}) against the real
 * executable. pytest (tests/test_jvm_state.py) runs one scenario per JVM:
 *
 * <pre>
 * java -cp CP warden.algos.host.StateTests SCENARIO --command CMD [--series DIR --prefix N
 *      --params JSON --out DIR] [VECTOR_DIR...]
 * </pre>
 *
 * Streaming scenarios read series Python wrote ({@code DIR/series-K.txt}: "time value" lines) and
 * write what Java scored ({@code OUT/LABEL-K.txt}: "anomaly t score" and "band t expected lower
 * upper" lines), which pytest compares with one Python batch call over the whole series. Each
 * scenario prints what it checked and exits 0, or prints every failed check and exits 1.
 */
public final class StateTests {
  private static final Duration GENEROUS = Duration.ofSeconds(60);
  private static final List<String> DIMENSIONS = List.of("host=jvm", "service=stream");

  private final List<String> failures = new ArrayList<>();
  private int checks;
  private String command = "warden-algos";
  private Path seriesDir;
  private Path out;
  private int prefix;
  private String params = "{}";
  private StatePassing passing = StatePassing.BY_REFERENCE;
  private final List<Path> vectors = new ArrayList<>();

  /** One series as Python wrote it. */
  private record Series(long[] times, double[] values) {
    long[] history(int prefix) {
      return Arrays.copyOf(times, prefix);
    }

    double[] historyValues(int prefix) {
      return Arrays.copyOf(values, prefix);
    }
  }

  public static void main(String[] args) throws Exception {
    StateTests tests = new StateTests();
    String scenario = args[0];
    for (int i = 1; i < args.length; i++) {
      switch (args[i]) {
        case "--command" -> tests.command = args[++i];
        case "--series" -> tests.seriesDir = Path.of(args[++i]);
        case "--out" -> tests.out = Path.of(args[++i]);
        case "--prefix" -> tests.prefix = Integer.parseInt(args[++i]);
        case "--params" -> tests.params = args[++i];
        case "--passing" -> tests.passing = StatePassing.valueOf(args[++i]);
        default -> tests.vectors.add(Path.of(args[i]));
      }
    }
    long start = System.nanoTime();
    switch (scenario) {
      case "stream" -> tests.stream();
      case "concurrent" -> tests.concurrent();
      case "cache_miss" -> tests.cacheMiss();
      case "sha256_only" -> tests.sha256Only();
      case "sha256_only_replay" -> tests.sha256OnlyReplay();
      case "state_errors" -> tests.stateErrors();
      case "state_vectors" -> tests.stateVectors();
      default -> throw new IllegalArgumentException("unknown scenario " + scenario);
    }
    System.out.printf(
        "%s: %d checks, %d failed, %.1f s%n",
        scenario, tests.checks, tests.failures.size(), (System.nanoTime() - start) / 1e9);
    for (String failure : tests.failures) {
      System.out.println("FAILED: " + failure);
    }
    System.exit(tests.failures.isEmpty() ? 0 : 1);
  }

  private void check(boolean condition, String what) {
    checks++;
    if (!condition) {
      failures.add(what);
    }
  }

  private Executable executable(WireFormat format, String... options) {
    return Executable.of(command, format).withOptions(options).withStderr(line -> {});
  }

  // ----------------------------------------------------------------------------------- stream

  /**
   * Per format: fit on the prefix through a pool of two, then every later point on its own, the
   * state named by reference each time; a re-delivered point is not sent again; a stored model
   * resumes the stream (bytes first, references after); one-shot and a plain detect agree.
   */
  private void stream() throws IOException {
    Series series = series(0);
    for (WireFormat format : WireFormat.values()) {
      String label = format.cliName;
      try (WorkerPool pool = new WorkerPool(executable(format), 2, GENEROUS)) {
        Trainer trainer = Trainer.pooled(pool, GENEROUS);
        SeriesStream stream =
            trainer.fitStream(
                "ksigma", params, DIMENSIONS, series.history(prefix), series.historyValues(prefix));
        TrainedModel fitted = stream.model();
        check(fitted.seen().points() == prefix, label + ": the fit saw the prefix: " + fitted);
        check(fitted.seen().end().getAsLong() == series.times[prefix - 1], label + ": seen end");
        check(fitted.sha256().equals(Sha256.of(fitted.state())), label + ": sha256 of the bytes");
        List<Scored> answers = new ArrayList<>();
        int half = prefix + (series.times.length - prefix) / 2;
        for (int i = prefix; i < half; i++) {
          answers.add(stream.next(series.times[i], series.values[i]));
        }
        SeriesStream.Stats stats = stream.stats();
        check(stats.calls() == half - prefix, label + ": one call a point: " + stats);
        check(stats.byReference() == stats.calls(), label + ": every call by reference: " + stats);
        check(stats.resent() == 0, label + ": nothing resent: " + stats);

        Scored again = stream.next(series.times[half - 1], series.values[half - 1]);
        check(again.times().length == 0, label + ": a re-delivered point is not scored again");
        check(stream.stats().calls() == stats.calls(), label + ": nor sent");

        // the rest from the stored model, as a process that restarted would resume
        TrainedModel stored = stream.model();
        TrainedModel restored =
            TrainedModel.restore(
                stored.algorithm(), stored.paramsJson(), stored.dimensions(), stored.state(),
                stored.stateVersion(), stored.seen());
        check(restored.sha256().equals(stored.sha256()), label + ": restore computes the sha256");
        SeriesStream resumed = trainer.stream(restored);
        long[] overlap = Arrays.copyOfRange(series.times, half - 3, half + 1);
        double[] overlapValues = Arrays.copyOfRange(series.values, half - 3, half + 1);
        Scored first = resumed.next(overlap, overlapValues); // 3 seen points dropped, 1 new
        check(first.times().length == 1 && first.times()[0] == series.times[half],
            label + ": only the new point of an overlapping delivery is sent");
        answers.add(first);
        for (int i = half + 1; i < series.times.length; i++) {
          answers.add(resumed.next(series.times[i], series.values[i]));
        }
        SeriesStream.Stats after = resumed.stats();
        check(after.byReference() == after.calls() - 1,
            label + ": a stored model's first call sends its bytes, then references: " + after);
        TrainedModel last = resumed.model();
        check(last.seen().points() == series.times.length, label + ": seen every point: " + last);
        check(last.seen().start().getAsLong() == series.times[0], label + ": seen from the start");
        write(label, 0, answers);

        Scored plain = trainer.detect(fitted, new long[] {series.times[prefix]},
            new double[] {series.values[prefix]});
        check(sameScores(plain, answers.get(0)), label + ": a plain detect answers as the stream");
        check(plain.next().sha256().equals(answers.get(0).next().sha256()),
            label + ": and returns the same state");
        check(pool.replacements() == 0, label + ": no worker replaced");
      }
    }
    OneShotInvoker invoker = new OneShotInvoker(executable(WireFormat.THRIFT_COMPACT));
    Trainer oneShot = Trainer.oneShot(invoker, GENEROUS);
    TrainedModel model =
        oneShot.fit("ksigma", params, DIMENSIONS, series.history(prefix), series.historyValues(prefix));
    SeriesStream stream = oneShot.stream(model);
    List<Scored> answers = new ArrayList<>();
    for (int i = prefix; i < prefix + 3; i++) {
      answers.add(stream.next(series.times[i], series.values[i]));
    }
    check(stream.stats().byReference() == 0, "one-shot: a process that keeps nothing gets bytes");
    check(stream.holder() == null, "one-shot: no worker holds the state");
    write("one-shot", 0, answers);
  }

  private static boolean sameScores(Scored a, Scored b) {
    return Arrays.equals(a.times(), b.times())
        && Arrays.equals(a.anomalies(), b.anomalies())
        && Arrays.equals(a.scores(), b.scores())
        && Arrays.equals(a.expected(), b.expected())
        && Arrays.equals(a.lower(), b.lower())
        && Arrays.equals(a.upper(), b.upper());
  }

  // ------------------------------------------------------------------------------- concurrent

  /**
   * Four series, a thread each, through two workers: a stream names its state only to the worker
   * holding it and sends bytes to the other when its own is busy, so nothing ever misses. With
   * {@code --passing BY_REFERENCE_SHA256_ONLY} the bytes it sends another worker come with every
   * point since them (the replay), and the detections are the same.
   */
  private void concurrent() throws Exception {
    int streams = 4;
    try (WorkerPool pool = new WorkerPool(executable(WireFormat.THRIFT_COMPACT), 2, GENEROUS)) {
      Trainer trainer = Trainer.pooled(pool, GENEROUS);
      ExecutorService threads = Executors.newFixedThreadPool(streams);
      List<Future<SeriesStream.Stats>> results = new ArrayList<>();
      for (int k = 0; k < streams; k++) {
        int key = k;
        results.add(threads.submit(() -> streamWhole(trainer, key, "concurrent")));
      }
      long byReference = 0;
      long calls = 0;
      long replayed = 0;
      for (Future<SeriesStream.Stats> result : results) {
        SeriesStream.Stats stats = result.get();
        check(stats.resent() == 0, "no reference sent to a worker without the state: " + stats);
        byReference += stats.byReference();
        calls += stats.calls();
        replayed += stats.replayed();
      }
      threads.shutdown();
      System.out.printf(
          "concurrent: %d calls, %d by reference (%s), %d points replayed%n", calls, byReference,
          passing, replayed);
      check(passing == StatePassing.BY_REFERENCE_SHA256_ONLY || replayed == 0,
          "only a sha256-only stream replays: " + replayed);
      check(byReference > 0, "some calls found their worker free");
      check(pool.replacements() == 0, "no worker replaced");
    }
  }

  private SeriesStream.Stats streamWhole(Trainer trainer, int key, String label) throws IOException {
    Series series = series(key);
    SeriesStream stream =
        trainer.fitStream(
            "ksigma", params, List.of("series=" + key), series.history(prefix),
            series.historyValues(prefix), passing);
    List<Scored> answers = new ArrayList<>();
    for (int i = prefix; i < series.times.length; i++) {
      answers.add(stream.next(series.times[i], series.values[i]));
    }
    write(label, key, answers);
    TrainedModel last = stream.model();
    check(last.sha256().equals(Sha256.of(last.state())) && last.seen().points() == series.times.length,
        label + " " + key + ": the stream's model is the bytes of the state after every point");
    return stream.stats();
  }

  // ------------------------------------------------------------------------------- cache miss

  /**
   * A worker that restarted itself in place (same pid, empty cache, after a hard timeout) answers
   * the next reference STATE_NOT_FOUND: the stream resends once, the caller sees an answer. A
   * killed worker's replacement is another worker: it gets bytes, without a miss. An executable
   * keeping no states misses every reference; BY_BYTES then avoids the second round trip.
   */
  private void cacheMiss() throws IOException, TException {
    Series series = series(0);
    String[] timeouts = {"--timeout-s", "1", "--hard-grace-s", "0.5"};
    List<Scored> answers = new ArrayList<>();
    try (WorkerPool pool = new WorkerPool(executable(WireFormat.THRIFT_COMPACT, timeouts), 1, GENEROUS)) {
      Trainer trainer = Trainer.pooled(pool, GENEROUS);
      SeriesStream stream =
          trainer.fitStream(
              "ksigma", params, DIMENSIONS, series.history(prefix), series.historyValues(prefix));
      int third = (series.times.length - prefix) / 3;
      int at = prefix;
      for (; at < prefix + third; at++) {
        answers.add(stream.next(series.times[at], series.values[at]));
      }
      WorkerId holder = stream.holder();
      try {
        pool.call(stubborn());
        check(false, "test_stubborn answered ok");
      } catch (WardenException.Timeout e) {
        check(!(e instanceof WardenException.DeadlineExceeded), "the worker answered TIMEOUT");
      }
      check(pool.workerIds().equals(List.of(holder)), "the worker restarted in place, same id");
      for (; at < prefix + 2 * third; at++) {
        answers.add(stream.next(series.times[at], series.values[at]));
      }
      SeriesStream.Stats restarted = stream.stats();
      check(restarted.resent() == 1, "one miss after the restart, resent: " + restarted);
      check(restarted.byReference() == restarted.calls() - 1, "all others by reference: " + restarted);
      System.out.println("restarted in place -> " + restarted);

      ProcessHandle.of(holder.pid()).ifPresent(h -> {
        h.destroyForcibly();
        h.onExit().join();
      });
      for (; at < series.times.length; at++) {
        answers.add(stream.next(series.times[at], series.values[at]));
      }
      SeriesStream.Stats killed = stream.stats();
      check(pool.replacements() == 1, "the killed worker was replaced");
      check(!Objects.equals(stream.holder(), holder), "a new worker holds the state");
      check(killed.resent() == 1, "the replacement was sent bytes, no miss: " + killed);
      check(killed.byReference() == killed.calls() - 2, "one call by bytes to it: " + killed);
      System.out.println("killed and replaced -> " + killed);
      write("cache-miss", 0, answers);
    }

    try (WorkerPool pool =
        new WorkerPool(executable(WireFormat.THRIFT_COMPACT, "--state-cache-mb", "0"), 1, GENEROUS)) {
      Trainer trainer = Trainer.pooled(pool, GENEROUS);
      TrainedModel model =
          trainer.fit("ksigma", params, DIMENSIONS, series.history(prefix), series.historyValues(prefix));
      for (StatePassing passing : StatePassing.values()) {
        SeriesStream stream = trainer.stream(model, passing);
        List<Scored> streamed = new ArrayList<>();
        for (int i = prefix; i < prefix + 20; i++) {
          streamed.add(stream.next(series.times[i], series.values[i]));
        }
        SeriesStream.Stats stats = stream.stats();
        System.out.println("--state-cache-mb 0, " + passing + " -> " + stats);
        long misses = passing == StatePassing.BY_BYTES ? 0 : 19; // the first call sends bytes
        check(stats.resent() == misses, passing + ": " + misses + " misses: " + stats);
        check(stats.byReference() == 0, passing + ": nothing answered by reference: " + stats);
        check(stream.pending() == 0 && stats.replayed() == 0,
            passing + ": a worker that keeps nothing answers the bytes, even to sha256-only");
        write("no-cache-" + passing.name().toLowerCase(java.util.Locale.ROOT), 0, streamed);
      }
    }
  }

  // ----------------------------------------------------------------------------- sha256 only

  /** History of the sha256-only scenarios: four days at one minute (seasonal finds its day). */
  private static final int HISTORY = 4 * 1440;
  /** Points streamed after it, one call each. */
  private static final int STREAMED = 300;
  /** Replay limit of the bounded streams: 300 calls fetch the bytes 300 / 41 = 7 times. */
  private static final int LIMIT = 40;
  /** What the sha256-only scenarios stream: running sums, a window of residuals, a profile. */
  private static final List<List<String>> KEPT =
      List.of(List.of("ksigma", "{\"window\": 30}"), List.of("mad", "{}"), List.of("seasonal", "{}"));

  /**
   * {@link StatePassing#BY_REFERENCE_SHA256_ONLY} against BY_BYTES, point by point through a pool
   * of two: the same detections, scores and band, and the same state after every point (sha256),
   * though no answer carries the state; {@code model()} mid-stream fetches bytes whose sha256 is
   * the worker's and which are BY_BYTES' state there, byte for byte; a stream with a replay limit
   * of {@value #LIMIT} fetches the bytes every {@value #LIMIT} + 1 calls and never buffers more.
   * ksigma and mad in every format, seasonal in compact Thrift.
   */
  private void sha256Only() {
    Series series = minutes(HISTORY + STREAMED, 7);
    for (WireFormat format : WireFormat.values()) {
      for (List<String> kept : KEPT) {
        String algorithm = kept.get(0);
        if (algorithm.equals("seasonal") && format != WireFormat.THRIFT_COMPACT) {
          continue;
        }
        String label = format.cliName + " " + algorithm;
        try (WorkerPool pool = new WorkerPool(executable(format), 2, GENEROUS)) {
          Trainer trainer = Trainer.pooled(pool, GENEROUS);
          SeriesStream byReference =
              trainer.fitStream(algorithm, kept.get(1), DIMENSIONS, series.history(HISTORY),
                  series.historyValues(HISTORY), StatePassing.BY_REFERENCE_SHA256_ONLY);
          TrainedModel fitted = byReference.model();
          check(byReference.stats().fetches() == 0, label + ": the fit's bytes need no call");
          SeriesStream byBytes = trainer.stream(fitted, StatePassing.BY_BYTES);
          SeriesStream bounded =
              trainer.withReplayLimit(LIMIT).stream(fitted, StatePassing.BY_REFERENCE_SHA256_ONLY);
          int anomalies = 0;
          int differ = 0;
          int bytesBack = 0;
          int boundedBytesBack = 0;
          int mostPending = 0;
          for (int i = HISTORY; i < HISTORY + STREAMED; i++) {
            Scored expected = byBytes.next(series.times[i], series.values[i]);
            Scored got = byReference.next(series.times[i], series.values[i]);
            Scored limited = bounded.next(series.times[i], series.values[i]);
            anomalies += expected.anomalies().length;
            String sha256 = expected.next().sha256();
            if (!sameScores(expected, got) || !sameScores(expected, limited)
                || !sha256.equals(got.stateSha256()) || !sha256.equals(limited.stateSha256())
                || !sha256.equals(byReference.stateSha256())) {
              differ++;
            }
            bytesBack += got.next() == null ? 0 : 1;
            boundedBytesBack += limited.next() == null ? 0 : 1;
            mostPending = Math.max(mostPending, bounded.pending());
            if (i == HISTORY + STREAMED / 2) {
              String held = byReference.stateSha256();
              int pending = byReference.pending();
              TrainedModel middle = byReference.model();
              check(pending == STREAMED / 2 + 1, label + ": every point since the fit is buffered: "
                  + pending);
              check(middle.sha256().equals(held), label + ": model() mid-stream is the worker's state");
              check(Sha256.of(middle.state()).equals(held), label + ": as real bytes");
              check(Arrays.equals(middle.state(), expected.next().state()),
                  label + ": byte for byte BY_BYTES' state at that point");
              check(middle.seen().equals(expected.next().seen()), label + ": seen " + middle.seen());
              check(byReference.pending() == 0, label + ": and the buffer is empty after it");
            }
          }
          check(differ == 0, label + ": " + differ + " of " + STREAMED
              + " answers differ from BY_BYTES' (scores, band or state sha256)");
          check(anomalies > 0, label + ": the streamed part has detections to compare");
          check(bytesBack == 0, label + ": no answer carried the state: " + bytesBack);
          SeriesStream.Stats stats = byReference.stats();
          check(stats.calls() == STREAMED && stats.byReference() == STREAMED,
              label + ": every call by reference: " + stats);
          check(stats.resent() == 0 && stats.replayed() == 0, label + ": nothing resent: " + stats);
          check(stats.fetches() == 1, label + ": one fetch, model() mid-stream: " + stats);

          long last = series.times[HISTORY + STREAMED - 1];
          Scored again = byReference.next(new long[] {last}, new double[] {0.0});
          check(again.times().length == 0 && byReference.stats().calls() == STREAMED,
              label + ": a re-delivered point is neither scored nor sent");
          check(again.next() == null && again.stateSha256().equals(byReference.stateSha256()),
              label + ": and names the state the worker holds");

          TrainedModel want = byBytes.model();
          TrainedModel got = byReference.model();
          check(Arrays.equals(got.state(), want.state()) && got.sha256().equals(want.sha256()),
              label + ": the same state after the stream, byte for byte");
          check(got.seen().equals(want.seen()), label + ": seen " + got.seen());
          check(byReference.stats().fetches() == 2, label + ": model() at the end fetched");

          SeriesStream.Stats limitedStats = bounded.stats();
          long fetches = STREAMED / (LIMIT + 1);
          check(limitedStats.fetches() == fetches && boundedBytesBack == fetches,
              label + ": limit " + LIMIT + ": " + fetches + " fetches: " + limitedStats);
          check(mostPending == LIMIT, label + ": the buffer filled to its limit, no further: "
              + mostPending);
          check(limitedStats.byReference() == STREAMED - 1,
              label + ": a stored model's first call sends its bytes, then references: "
                  + limitedStats);
          TrainedModel limitedModel = bounded.model();
          check(Arrays.equals(limitedModel.state(), want.state()),
              label + ": the bounded stream's state too");
          check(pool.replacements() == 0, label + ": no worker replaced");
          System.out.println(label + " -> " + stats + "; bounded " + limitedStats + ", "
              + anomalies + " anomalies, state " + want.stateSize() + " bytes");
        }
      }
    }
  }

  /**
   * Misses the sha256-only stream recovers by replay: two series take turns, five calls each,
   * on one worker whose state cache holds one of their states but not two, so the first call of
   * each turn names a state the worker evicted (STATE_NOT_FOUND) and resends the last bytes the
   * stream holds with the four points since; then the holder is killed mid-turn and its
   * replacement is sent the bytes with every point since. The answers and the states are
   * BY_BYTES' (through an ordinary pool): identical for mad and seasonal; for ksigma the same
   * detections and states, scores and band within rounding (a point scored within a chunk is
   * added up in another order than a point scored alone).
   */
  private void sha256OnlyReplay() {
    Series first = minutes(HISTORY + STREAMED, 11);
    Series second = minutes(HISTORY + STREAMED, 12);
    for (List<String> kept : KEPT) {
      String algorithm = kept.get(0);
      boolean exact = !algorithm.equals("ksigma");
      TrainedModel fitFirst;
      TrainedModel fitSecond;
      List<Scored> wantFirst = new ArrayList<>();
      List<Scored> wantSecond = new ArrayList<>();
      int largest = 0;
      try (WorkerPool pool = new WorkerPool(executable(WireFormat.THRIFT_COMPACT), 1, GENEROUS)) {
        Trainer trainer = Trainer.pooled(pool, GENEROUS);
        fitFirst = trainer.fit(algorithm, kept.get(1), DIMENSIONS, first.history(HISTORY),
            first.historyValues(HISTORY));
        fitSecond = trainer.fit(algorithm, kept.get(1), List.of("series=second"),
            second.history(HISTORY), second.historyValues(HISTORY));
        SeriesStream a = trainer.stream(fitFirst, StatePassing.BY_BYTES);
        SeriesStream b = trainer.stream(fitSecond, StatePassing.BY_BYTES);
        for (int i = HISTORY; i < HISTORY + STREAMED; i++) {
          wantFirst.add(a.next(first.times[i], first.values[i]));
          wantSecond.add(b.next(second.times[i], second.values[i]));
          largest = Math.max(largest, Math.max(a.model().stateSize(), b.model().stateSize()));
        }
      }
      largest = Math.max(largest, Math.max(fitFirst.stateSize(), fitSecond.stateSize()));
      String cacheMb = String.format(java.util.Locale.ROOT, "%.6f", 1.5 * largest / (1 << 20));
      String label = algorithm + " --state-cache-mb " + cacheMb;
      try (WorkerPool pool = new WorkerPool(
          executable(WireFormat.THRIFT_COMPACT, "--state-cache-mb", cacheMb), 1, GENEROUS)) {
        Trainer trainer = Trainer.pooled(pool, GENEROUS);
        SeriesStream a = trainer.stream(fitFirst, StatePassing.BY_REFERENCE_SHA256_ONLY);
        SeriesStream b = trainer.stream(fitSecond, StatePassing.BY_REFERENCE_SHA256_ONLY);
        List<Scored> gotFirst = new ArrayList<>();
        List<Scored> gotSecond = new ArrayList<>();
        int turn = 5;
        // the holder dies before the fourth call of the first stream's last but one turn: its
        // first call missed and brought the bytes back, two more left two points pending
        int killAt = HISTORY + STREAMED - 2 * turn + 3;
        long pendingAtKill = -1;
        long replayedByKill = -1;
        WorkerId killed = null;
        for (int at = HISTORY; at < HISTORY + STREAMED; at += turn) {
          for (int i = at; i < at + turn; i++) {
            long replayedBefore = a.stats().replayed();
            if (i == killAt) {
              killed = a.holder();
              pendingAtKill = a.pending();
              ProcessHandle.of(killed.pid()).ifPresent(h -> {
                h.destroyForcibly();
                h.onExit().join();
              });
            }
            gotFirst.add(a.next(first.times[i], first.values[i]));
            if (i == killAt) {
              replayedByKill = a.stats().replayed() - replayedBefore;
            }
          }
          for (int i = at; i < at + turn; i++) {
            gotSecond.add(b.next(second.times[i], second.values[i]));
          }
        }
        SeriesStream.Stats statsA = a.stats();
        SeriesStream.Stats statsB = b.stats();
        System.out.println(label + ": first " + statsA + ", second " + statsB);
        long turns = STREAMED / turn;
        // a first turn sends the fit's bytes (no miss); every later turn starts with a miss but
        // the second stream's turn after the kill, which goes to the replacement with the bytes
        check(statsA.resent() == turns - 1, label + ": first stream missed once a turn: " + statsA);
        check(statsB.resent() == turns - 2, label + ": second stream too: " + statsB);
        check(statsA.calls() == STREAMED && statsB.calls() == STREAMED,
            label + ": one call a point");
        check(statsA.replayed() > 3 * turns && statsB.replayed() > 3 * turns,
            label + ": the misses replayed the buffered points");
        check(pendingAtKill == 2, label + ": two points pending at the kill: " + pendingAtKill);
        check(replayedByKill == 2, label + ": the replacement was sent them with the bytes: "
            + replayedByKill);
        check(pool.replacements() == 1 && !Objects.equals(a.holder(), killed),
            label + ": the killed holder was replaced and the replacement holds the state");
        compare(label + " first", wantFirst, gotFirst, exact);
        compare(label + " second", wantSecond, gotSecond, exact);
        TrainedModel lastFirst = a.model();
        TrainedModel lastSecond = b.model();
        check(Arrays.equals(lastFirst.state(), wantFirst.get(STREAMED - 1).next().state()),
            label + ": the first stream's state after it all is BY_BYTES', byte for byte");
        check(Arrays.equals(lastSecond.state(), wantSecond.get(STREAMED - 1).next().state()),
            label + ": the second's too");
        check(Sha256.of(lastFirst.state()).equals(lastFirst.sha256())
            && Sha256.of(lastSecond.state()).equals(lastSecond.sha256()),
            label + ": models are the bytes they name");
      }
    }
  }

  /** The answers of a sha256-only stream against BY_BYTES': point by point, state by state. */
  private void compare(String label, List<Scored> want, List<Scored> got, boolean exact) {
    check(want.size() == got.size(), label + ": " + got.size() + " answers of " + want.size());
    int anomalies = 0;
    int differ = 0;
    int states = 0;
    double worst = 0;
    for (int i = 0; i < Math.min(want.size(), got.size()); i++) {
      Scored w = want.get(i);
      Scored g = got.get(i);
      anomalies += w.anomalies().length;
      states += w.next().sha256().equals(g.stateSha256()) ? 0 : 1;
      if (exact) {
        differ += sameScores(w, g) ? 0 : 1;
        continue;
      }
      if (!Arrays.equals(w.times(), g.times()) || !Arrays.equals(w.anomalies(), g.anomalies())) {
        differ++;
        continue;
      }
      worst = Math.max(worst, worst(w.scores(), g.scores()));
      worst = Math.max(worst, worst(w.expected(), g.expected()));
      worst = Math.max(worst, worst(w.lower(), g.lower()));
      worst = Math.max(worst, worst(w.upper(), g.upper()));
    }
    check(anomalies > 0, label + ": there are detections to compare");
    check(differ == 0, label + ": " + differ + " answers differ from BY_BYTES'");
    check(states == 0, label + ": " + states + " states differ from BY_BYTES' (sha256)");
    check(worst <= 1e-9, label + ": scores and band within 1e-9 relative, worst " + worst);
    System.out.println(label + ": " + want.size() + " answers, " + anomalies + " anomalies, "
        + (exact ? "identical" : "worst relative difference " + worst));
  }

  /** The largest relative difference of two arrays (NaN where both are NaN counts as equal). */
  private static double worst(double[] a, double[] b) {
    if (a == null || b == null) {
      return a == b ? 0 : Double.POSITIVE_INFINITY;
    }
    if (a.length != b.length) {
      return Double.POSITIVE_INFINITY;
    }
    double worst = 0;
    for (int i = 0; i < a.length; i++) {
      if (Double.isNaN(a[i]) || Double.isNaN(b[i])) {
        worst = Double.isNaN(a[i]) && Double.isNaN(b[i]) ? worst : Double.POSITIVE_INFINITY;
        continue;
      }
      worst = Math.max(worst, Math.abs(a[i] - b[i]) / Math.max(1.0, Math.abs(a[i])));
    }
    return worst;
  }

  /**
   * A minute series with a daily wave, noise, a missing value in a hundred, and in the part after
   * {@link #HISTORY} a spike every hour and a ten-minute incident.
   */
  private static Series minutes(int n, long seed) {
    Random random = new Random(seed);
    long[] times = new long[n];
    double[] values = new double[n];
    for (int i = 0; i < n; i++) {
      times[i] = 1_700_000_000L + 60L * i;
      values[i] = 100 + 10 * Math.sin(2 * Math.PI * i / 1440.0) + random.nextGaussian();
      if (i >= HISTORY && i % 61 == 30) {
        values[i] += 30;
      }
      if (i >= HISTORY + 200 && i < HISTORY + 210) {
        values[i] += 20;
      }
      if (random.nextInt(100) == 0) {
        values[i] = Double.NaN;
      }
    }
    return new Series(times, values);
  }

  private static Request stubborn() {
    return HarnessTests.spikeRequest("test_stubborn", "stubborn", 10, 5, new Random(0))
        .setParams_json("{\"seconds\": 30}");
  }

  // ----------------------------------------------------------------------------- state errors

  /**
   * Typed errors, every format: a state fitted with other params is IncompatibleState (and a
   * stream does not retry it), a tampered one InvalidInput, points out of order InvalidInput, a
   * stateless algorithm's fit UnknownAlgorithm; a failed stream call leaves the stream as it was.
   */
  private void stateErrors() throws IOException {
    Series series = series(0);
    for (WireFormat format : WireFormat.values()) {
      String label = format.cliName;
      try (WorkerPool pool = new WorkerPool(executable(format), 1, GENEROUS)) {
        Trainer trainer = Trainer.pooled(pool, GENEROUS);
        TrainedModel model =
            trainer.fit("ksigma", "{\"window\": 20}", DIMENSIONS, series.history(prefix),
                series.historyValues(prefix));
        long[] next = {series.times[prefix]};
        double[] value = {series.values[prefix]};

        TrainedModel otherParams =
            TrainedModel.restore("ksigma", "{\"window\": 30}", DIMENSIONS, model.state(),
                model.stateVersion(), model.seen());
        expect(label + " other params", WardenException.IncompatibleState.class,
            () -> trainer.detect(otherParams, next, value), "state");
        SeriesStream stream = trainer.stream(otherParams);
        expect(label + " other params, streamed", WardenException.IncompatibleState.class,
            () -> stream.next(next, value), "state");
        check(stream.stats().calls() == 0 && stream.stats().resent() == 0,
            label + ": an incompatible state is not resent: " + stream.stats());
        check(stream.model() == otherParams, label + ": a failed call keeps the stream's model");

        byte[] tampered = model.state();
        tampered[tampered.length - 1] ^= 1;
        TrainedModel damaged =
            TrainedModel.restore("ksigma", model.paramsJson(), DIMENSIONS, tampered,
                model.stateVersion(), model.seen());
        expect(label + " tampered", WardenException.InvalidInput.class,
            () -> trainer.detect(damaged, next, value), "state");

        SeriesStream good = trainer.stream(model);
        long[] backwards = {series.times[prefix + 1], series.times[prefix]};
        expect(label + " out of order", WardenException.InvalidInput.class,
            () -> good.next(backwards, new double[] {1, 2}), null);
        Scored after = good.next(next, value);
        check(after.times().length == 1, label + ": the stream goes on after a refused call");

        expect(label + " stateless fit", WardenException.UnknownAlgorithm.class,
            () -> trainer.fit("spectral_residual", "{}", DIMENSIONS, next, value), null);
        check(pool.replacements() == 0, label + ": errors cost no worker");
      }
    }
    Trainer oneShot = Trainer.oneShot(new OneShotInvoker(executable(WireFormat.JSON)), GENEROUS);
    TrainedModel model =
        oneShot.fit("ksigma", "{\"window\": 20}", DIMENSIONS, series.history(prefix),
            series.historyValues(prefix));
    TrainedModel otherParams =
        TrainedModel.restore("ksigma", "{\"k\": 9}", DIMENSIONS, model.state(), model.stateVersion(),
            model.seen());
    expect("one-shot json other params", WardenException.IncompatibleState.class,
        () -> oneShot.detect(otherParams, new long[] {series.times[prefix]},
            new double[] {series.values[prefix]}), "state");
  }

  private void expect(String what, Class<? extends WardenException> type, Runnable call, String field) {
    try {
      call.run();
      check(false, what + ": answered ok, expected " + type.getSimpleName());
    } catch (WardenException e) {
      check(type.isInstance(e), what + ": raised " + e.getClass().getSimpleName() + ": " + e.getMessage());
      check(field == null || field.equals(e.field()), what + ": names field " + e.field());
      System.out.println(what + " -> " + e.getClass().getSimpleName() + ": " + e.getMessage());
    }
  }

  // ---------------------------------------------------------------------------- state vectors

  /**
   * The shared state vectors through the typed API. Every stored answer reads the same in the
   * three formats (JSON decoded by this harness, too), errors as their typed exceptions; fitting
   * the fit vector's history gives its stored state byte for byte, and scoring the detect
   * vector's points with that state gives its stored answer and state.
   */
  private void stateVectors() throws IOException, TException {
    Path fitVector = null;
    Path detectVector = null;
    for (Path vector : vectors) {
      String name = vector.getFileName().toString();
      fitVector = name.equals("ksigma_fit") ? vector : fitVector;
      detectVector = name.equals("ksigma_detect_with_state") ? vector : detectVector;
      Request request = WireFormat.THRIFT_COMPACT.decode(
          new Request(), Files.readAllBytes(vector.resolve("request.thrift-compact")));
      List<String> answers = new ArrayList<>();
      for (WireFormat format : WireFormat.values()) {
        byte[] stored = Files.readAllBytes(vector.resolve("response." + format.cliName));
        answers.add(typedAnswer(TrainedWire.of(format), request.getInterface_name(), stored));
      }
      System.out.println(name + " -> " + answers.get(0));
      check(answers.stream().distinct().count() == 1, name + ": formats read differently: " + answers);
      check(!answers.get(0).startsWith("Internal"), name + ": a typed answer: " + answers.get(0));
    }
    check(fitVector != null && detectVector != null, "the ksigma fit and detect vectors are given");
    if (fitVector == null || detectVector == null) {
      return;
    }
    Request fit = WireFormat.THRIFT_COMPACT.decode(
        new Request(), Files.readAllBytes(fitVector.resolve("request.thrift-compact")));
    Response fitted = WireFormat.THRIFT_COMPACT.decode(
        new Response(), Files.readAllBytes(fitVector.resolve("response.thrift-compact")));
    Request detect = WireFormat.THRIFT_COMPACT.decode(
        new Request(), Files.readAllBytes(detectVector.resolve("request.thrift-compact")));
    Response detected = WireFormat.THRIFT_COMPACT.decode(
        new Response(), Files.readAllBytes(detectVector.resolve("response.thrift-compact")));
    for (WireFormat format : WireFormat.values()) {
      try (WorkerPool pool = new WorkerPool(executable(format), 1, GENEROUS)) {
        Trainer trainer = Trainer.pooled(pool, GENEROUS);
        TrainedModel model =
            trainer.fit(fit.getAlgorithm(), fit.getParams_json(), fit.getFit().getDimensions(),
                longs(fit.getFit().getTimestamps()), doubles(fit.getFit().getValues()));
        check(Arrays.equals(model.state(), fitted.getFit().getState()),
            format.cliName + ": fitting the vector's history gives its state byte for byte");
        check(model.sha256().equals(fitted.getFit().getState_sha256()), format.cliName + ": sha256");
        check(model.stateVersion() == fitted.getFit().getState_version(), format.cliName + ": version");
        TrainedModel given =
            TrainedModel.restore(detect.getAlgorithm(), detect.getParams_json(),
                detect.getDetect().getDimensions(), detect.getDetect().getState(),
                model.stateVersion(), model.seen());
        check(given.sha256().equals(model.sha256()), format.cliName + ": the detect vector's state");
        Scored scored =
            trainer.stream(given).next(longs(detect.getDetect().getTimestamps()),
                doubles(detect.getDetect().getValues()));
        check(Arrays.equals(scored.anomalies(), longs(detected.getDetect().getTimestamps())),
            format.cliName + ": the stored anomalies");
        check(Arrays.equals(scored.expected(), doubles(detected.getDetect().getExpected())),
            format.cliName + ": the stored band");
        check(Arrays.equals(scored.next().state(), detected.getDetect().getState()),
            format.cliName + ": the stored state after, byte for byte");
        check(scored.next().sha256().equals(detected.getDetect().getState_sha256()),
            format.cliName + ": its sha256");
      }
    }
  }

  /** A stored answer as the typed API reads it, as text comparable across formats. */
  private static String typedAnswer(TrainedWire wire, String interfaceName, byte[] stored) {
    try {
      if ("fit".equals(interfaceName)) {
        TrainedWire.FitAnswer fit = wire.fitAnswer(stored);
        return "fit " + Sha256.of(fit.state()).equals(fit.sha256()) + " " + fit.sha256() + " v"
            + fit.stateVersion() + " " + fit.seen();
      }
      TrainedWire.DetectAnswer detect = wire.detectAnswer(stored);
      return "detect " + Arrays.toString(detect.anomalies()) + " " + Arrays.toString(detect.scores())
          + " " + Arrays.toString(detect.upper()) + " " + Sha256.of(detect.state()).equals(detect.sha256())
          + " " + detect.sha256();
    } catch (WardenException e) {
      ErrorCode code = e.code();
      return e.getClass().getSimpleName() + " " + code + " " + e.field() + " " + e.requestId() + " "
          + e.getMessage();
    }
  }

  private static long[] longs(List<Long> items) {
    return items.stream().mapToLong(Long::longValue).toArray();
  }

  private static double[] doubles(List<Double> items) {
    return items.stream().mapToDouble(Double::doubleValue).toArray();
  }

  // ------------------------------------------------------------------------------------ files

  private Series series(int key) throws IOException {
    List<String> lines = Files.readAllLines(seriesDir.resolve("series-" + key + ".txt"));
    long[] times = new long[lines.size()];
    double[] values = new double[lines.size()];
    for (int i = 0; i < times.length; i++) {
      String[] parts = lines.get(i).split(" ");
      times[i] = Long.parseLong(parts[0]);
      values[i] = Double.parseDouble(parts[1]);
    }
    return new Series(times, values);
  }

  /** What Java scored, for pytest to compare with Python's batch call (exact decimal doubles). */
  private void write(String label, int key, List<Scored> answers) throws IOException {
    Path file = out.resolve(label + "-" + key + ".txt");
    try (PrintWriter writer = new PrintWriter(Files.newBufferedWriter(file, StandardCharsets.UTF_8))) {
      for (Scored scored : answers) {
        for (int i = 0; i < scored.anomalies().length; i++) {
          writer.println("anomaly " + scored.anomalies()[i] + " " + scored.scores()[i]);
        }
        for (int i = 0; i < scored.times().length; i++) {
          writer.println("band " + scored.times()[i] + " " + scored.expected()[i] + " "
              + scored.lower()[i] + " " + scored.upper()[i]);
        }
      }
    }
  }
}

package warden.algos.host;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.apache.thrift.TException;
import warden.algos.thrift.DetectPayload;
import warden.algos.thrift.ErrorCode;
import warden.algos.thrift.RcaPayload;
import warden.algos.thrift.Request;
import warden.algos.thrift.Response;
import warden.algos.thrift.TimeSeries;

/**
 * The contract, checked from Java against the real executable. pytest runs one scenario per JVM:
 *
 * <pre>
 * java -cp CP warden.algos.host.HarnessTests SCENARIO --command CMD [--option ARG]... [VECTOR_DIR...]
 * </pre>
 *
 * Each scenario prints what it checked and exits 0, or prints every failed check and exits 1. No
 * test framework: Debian's libthrift-java and the JDK are all the harness may assume.
 */
public final class HarnessTests {
  private static final long T0 = 1_700_000_000L;
  private static final Duration GENEROUS = Duration.ofSeconds(60);

  private final List<String> failures = new ArrayList<>();
  private int checks;
  private String command = "warden-algos";
  private final List<String> options = new ArrayList<>();
  private final List<Path> vectors = new ArrayList<>();

  public static void main(String[] args) throws Exception {
    HarnessTests tests = new HarnessTests();
    String scenario = args[0];
    for (int i = 1; i < args.length; i++) {
      switch (args[i]) {
        case "--command" -> tests.command = args[++i];
        case "--option" -> tests.options.add(args[++i]);
        default -> tests.vectors.add(Path.of(args[i]));
      }
    }
    long start = System.nanoTime();
    switch (scenario) {
      case "vectors" -> tests.vectors();
      case "concurrency" -> tests.concurrency();
      case "worker_killed" -> tests.workerKilled();
      case "deadline" -> tests.deadline();
      case "malformed_frame" -> tests.malformedFrame();
      case "huge_request" -> tests.hugeRequest();
      case "matrix" -> tests.matrix();
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

  private Executable executable(WireFormat format) {
    return Executable.of(command, format)
        .withOptions(options.toArray(String[]::new))
        .withStderr(line -> {});
  }

  // ---------------------------------------------------------------------------------- vectors

  /**
   * Every shared vector, every format: one-shot and pooled answers equal the stored bytes (a case
   * with {@code numbers_rtol}: the same document, floats within it; see {@link RoundedText}).
   */
  private void vectors() throws IOException, TException {
    List<String> rounding = RoundedText.selfCheck();
    check(rounding.isEmpty(), "RoundedText forgives what it must not: " + rounding);
    for (WireFormat format : WireFormat.values()) {
      OneShotInvoker invoker = new OneShotInvoker(executable(format));
      try (WorkerPool pool = new WorkerPool(executable(format), 2, GENEROUS)) {
        for (Path vector : vectors) {
          String name = vector.getFileName() + " " + format.cliName;
          byte[] request = Files.readAllBytes(vector.resolve("request." + format.cliName));
          byte[] expected = Files.readAllBytes(vector.resolve("response." + format.cliName));
          double rtol = numbersRtol(vector);
          byte[] oneShot = invoker.invokeRaw(request, GENEROUS);
          check(
              sameAnswer(format, oneShot, expected, rtol),
              name + ": one-shot answer differs from the stored response:\n  got      "
                  + show(format, oneShot) + "\n  expected " + show(format, expected));
          for (int round = 0; round < 2; round++) {
            byte[] pooled = pool.callRaw(request);
            check(
                sameAnswer(format, pooled, expected, rtol),
                name + ": pooled answer " + round + " differs:\n  got      "
                    + show(format, pooled) + "\n  expected " + show(format, expected));
          }
          if (format.isThrift()) {
            thriftRoundTrip(name, format, pool, request, expected, rtol);
          }
        }
        check(pool.replacements() == 0, format.cliName + ": no worker was replaced");
      }
    }
  }

  /** Java's own encoding agrees with Python's, and the typed API raises the right exception. */
  private void thriftRoundTrip(
      String name,
      WireFormat format,
      WorkerPool pool,
      byte[] requestBytes,
      byte[] responseBytes,
      double rtol)
      throws TException {
    Request request = format.decode(new Request(), requestBytes);
    sortDimensions(request);
    check(
        java.util.Arrays.equals(format.encode(request), requestBytes),
        name + ": Java re-encodes the request to other bytes");
    if (request.isSetDetect() && request.getDetect().isSetValues_packed()) {
      java.nio.ByteBuffer packed = request.getDetect().bufferForValues_packed();
      double[] values = PackedArrays.doubles(packed);
      check(PackedArrays.pack(values).equals(packed), name + ": PackedArrays round trip");
      check(java.util.Arrays.stream(values).anyMatch(Double::isNaN), name + ": NaN survives packing");
    }
    Response expected = format.decode(new Response(), responseBytes);
    check(
        java.util.Arrays.equals(format.encode(expected), responseBytes),
        name + ": Java re-encodes the response to other bytes");
    try {
      Response answer = pool.call(request);
      check("ok".equals(expected.getStatus()), name + ": typed call succeeded, expected an error");
      check(
          answer.equals(expected)
              || rtol > 0 && RoundedText.differences(answer.toString(), expected.toString(), rtol)
                  .isEmpty(),
          name + ": typed answer differs: " + answer);
    } catch (WardenException error) {
      ErrorCode code = expected.getError() == null ? null : expected.getError().getCode();
      check(error.code() == code, name + ": typed call raised " + error.code() + ", expected " + code);
      check(
          error.getClass().getSimpleName().equals(expectedClass(code)),
          name + ": raised " + error.getClass().getSimpleName() + " for " + code);
      check(
          java.util.Objects.equals(error.requestId(), expected.getRequest_id()),
          name + ": exception carries request id " + error.requestId());
    }
  }

  /**
   * The vector's {@code numbers_rtol} (case.json), or 0: a case whose numbers depend on the
   * processor in their last bits (prophet's) is compared up to that relative tolerance.
   */
  private static double numbersRtol(Path vector) throws IOException {
    Object tolerance =
        MiniJson.object(MiniJson.parse(Files.readAllBytes(vector.resolve("case.json"))), "case")
            .get("numbers_rtol");
    return tolerance instanceof java.math.BigDecimal value ? value.doubleValue() : 0.0;
  }

  /** The stored bytes, or with a tolerance the same document up to the last bits of floats. */
  private static boolean sameAnswer(WireFormat format, byte[] got, byte[] expected, double rtol) {
    if (java.util.Arrays.equals(got, expected)) {
      return true;
    }
    return rtol > 0
        && RoundedText.differences(show(format, got), show(format, expected), rtol).isEmpty();
  }

  private static String expectedClass(ErrorCode code) {
    StringBuilder name = new StringBuilder();
    for (String part : String.valueOf(code).toLowerCase(java.util.Locale.ROOT).split("_")) {
      name.append(Character.toUpperCase(part.charAt(0))).append(part.substring(1));
    }
    return name.toString();
  }

  /** Thrift's Java maps are HashMaps; the IDL's rule 5 says map keys are written sorted. */
  private static void sortDimensions(Request request) {
    if (request.isSetRca()) {
      RcaPayload rca = request.getRca();
      sortDimensions(rca.getMetric_of_interest());
      if (rca.isSetRelated_metrics()) {
        rca.getRelated_metrics().forEach(HarnessTests::sortDimensions);
      }
    }
  }

  private static void sortDimensions(TimeSeries series) {
    if (series != null && series.isSetDimensions()) {
      series.setDimensions(new TreeMap<>(series.getDimensions()));
    }
  }

  private static String show(WireFormat format, byte[] bytes) {
    if (!format.isThrift()) {
      return new String(bytes, StandardCharsets.UTF_8);
    }
    try {
      return format.decode(new Response(), bytes).toString();
    } catch (TException e) {
      return bytes.length + " undecodable bytes";
    }
  }

  // ------------------------------------------------------------------------------ concurrency

  /** 4 threads x 1,000 requests through 2 workers; every answer is checked against its input. */
  private void concurrency() throws Exception {
    int threads = 4;
    int perThread = 1000;
    try (WorkerPool pool = new WorkerPool(executable(WireFormat.THRIFT_COMPACT), 2, GENEROUS)) {
      ExecutorService callers = Executors.newFixedThreadPool(threads);
      List<Future<List<String>>> results = new ArrayList<>();
      for (int t = 0; t < threads; t++) {
        int thread = t;
        results.add(callers.submit(() -> callMany(pool, thread, perThread)));
      }
      int answered = 0;
      for (Future<List<String>> result : results) {
        List<String> problems = result.get();
        answered += perThread;
        problems.stream().limit(5).forEach(p -> check(false, p));
        check(problems.isEmpty(), problems.size() + " wrong answers in one thread");
      }
      callers.shutdown();
      check(answered == threads * perThread, "every request answered");
      check(pool.replacements() == 0, "no worker replaced: " + pool.replacements());
    }
  }

  private static List<String> callMany(WorkerPool pool, int thread, int count) {
    List<String> problems = new ArrayList<>();
    Random random = new Random(thread);
    for (int i = 0; i < count; i++) {
      String id = "t" + thread + "-" + i;
      int spikeAt = 100 + random.nextInt(90);
      boolean unknown = i % 10 == 9; // every tenth request is an error the pool must survive
      Request request = spikeRequest(unknown ? "no_such_algorithm" : "ksigma", id, 200, spikeAt, random);
      try {
        Response response = pool.call(request);
        if (unknown) {
          problems.add(id + ": unknown algorithm answered ok");
          continue;
        }
        List<Long> anomalies = response.getDetect().getTimestamps();
        if (!id.equals(response.getRequest_id())) {
          problems.add(id + ": answer carries request id " + response.getRequest_id());
        } else if (!anomalies.contains(T0 + 60L * spikeAt)) {
          problems.add(id + ": spike at " + spikeAt + " not found in " + anomalies);
        } else if (response.getDetect().getExpected().size() != 200) {
          problems.add(id + ": band of " + response.getDetect().getExpected().size() + " points");
        }
      } catch (WardenException.UnknownAlgorithm e) {
        if (!unknown || !id.equals(e.requestId())) {
          problems.add(id + ": unexpected " + e.getMessage());
        }
      } catch (WardenException e) {
        problems.add(id + ": " + e.getMessage());
      }
    }
    return problems;
  }

  static Request spikeRequest(String algorithm, String id, int n, int spikeAt, Random random) {
    List<Long> times = new ArrayList<>(n);
    List<Double> values = new ArrayList<>(n);
    for (int i = 0; i < n; i++) {
      times.add(T0 + 60L * i);
      values.add(100 + 5 * Math.sin(i / 5.0) + random.nextGaussian() + (i == spikeAt ? 60 : 0));
    }
    return new Request()
        .setInterface_name("detect")
        .setAlgorithm(algorithm)
        .setParams_json("{\"window\": 30, \"k\": 5.0}")
        .setRequest_id(id)
        .setDetect(
            new DetectPayload().setDimensions(List.of("host=jvm")).setTimestamps(times).setValues(values));
  }

  private static Request sleepRequest(String algorithm, double seconds, String id) {
    return spikeRequest(algorithm, id, 10, 5, new Random(0))
        .setParams_json("{\"seconds\": " + seconds + "}");
  }

  private boolean answersNormally(WorkerPool pool, String what) {
    try {
      Response response = pool.call(spikeRequest("ksigma", "after", 200, 150, new Random(1)));
      check(response.getDetect().getTimestamps().contains(T0 + 60L * 150), what + ": wrong answer");
      return true;
    } catch (WardenException e) {
      check(false, what + ": " + e.getMessage());
      return false;
    }
  }

  // ---------------------------------------------------------------------------- worker killed

  /** A worker killed mid-request: the caller gets WorkerDied, the pool replaces it and goes on. */
  private void workerKilled() throws Exception {
    try (WorkerPool pool = new WorkerPool(executable(WireFormat.THRIFT_COMPACT), 1, GENEROUS)) {
      answersNormally(pool, "before");
      long victim = pool.workerPids().get(0);
      Thread killer =
          new Thread(
              () -> {
                sleep(500);
                ProcessHandle.of(victim).ifPresent(ProcessHandle::destroyForcibly);
              });
      killer.start();
      long start = System.nanoTime();
      try {
        pool.call(sleepRequest("test_sleep", 20, "doomed"));
        check(false, "a killed worker still answered");
      } catch (WardenException.WorkerDied e) {
        double seconds = (System.nanoTime() - start) / 1e9;
        check(seconds < 5, "the death was noticed after " + seconds + " s");
        check(e.code() == ErrorCode.INTERNAL, "WorkerDied carries INTERNAL");
        System.out.println("killed mid-request -> " + e.getMessage().lines().findFirst().orElse(""));
      }
      killer.join();
      check(pool.replacements() == 1, "one replacement, saw " + pool.replacements());
      check(pool.workerPids().get(0) != victim, "a new process took the killed one's place");
      answersNormally(pool, "after the kill");

      long idleVictim = pool.workerPids().get(0);
      ProcessHandle.of(idleVictim)
          .ifPresent(
              h -> {
                h.destroyForcibly();
                h.onExit().join();
              });
      answersNormally(pool, "after an idle worker died");
      check(pool.replacements() == 2, "the dead idle worker was replaced before use");

      pool.call(sleepRequest("test_sleep", 0.01, "warm")); // a fresh worker is ready
      long crasher = pool.workerPids().get(0);
      try {
        pool.call(
            spikeRequest("test_crash", "exits", 10, 5, new Random(0)).setParams_json("{\"mode\": \"hard_exit\"}"));
        check(false, "an algorithm that exits the process still got an answer");
      } catch (WardenException.WorkerDied e) {
        check(e.getMessage().contains("exited with status 70"), "says how it died: " + e.getMessage());
      }
      check(pool.workerPids().get(0) != crasher, "the crashed worker was replaced");
      answersNormally(pool, "after an algorithm killed its worker");
    }
  }

  // --------------------------------------------------------------------------------- deadline

  /** The host deadline kills and replaces; the executable's own --timeout-s keeps the worker. */
  private void deadline() throws Exception {
    try (WorkerPool pool =
        new WorkerPool(executable(WireFormat.THRIFT_COMPACT), 1, Duration.ofSeconds(1))) {
      answersNormally(pool, "warm-up");
      long slow = pool.workerPids().get(0);
      long start = System.nanoTime();
      try {
        pool.call(sleepRequest("test_sleep", 30, "too-slow"));
        check(false, "a 30 s request answered within a 1 s deadline");
      } catch (WardenException.DeadlineExceeded e) {
        double seconds = (System.nanoTime() - start) / 1e9;
        check(seconds >= 0.99 && seconds < 3, "deadline fired after " + seconds + " s");
        check(e instanceof WardenException.Timeout, "DeadlineExceeded is a Timeout");
        System.out.printf("host deadline 1 s -> DeadlineExceeded after %.3f s%n", seconds);
      }
      check(pool.workerPids().get(0) != slow, "the late worker was replaced");
      check(pool.replacements() == 1, "one replacement");
      pool.call(sleepRequest("test_sleep", 0.01, "warm"), GENEROUS); // the new worker's start-up
      answersNormally(pool, "after the deadline");
    }

    List<String> saved = new ArrayList<>(options);
    options.addAll(List.of("--timeout-s", "0.3", "--hard-grace-s", "0.5"));
    try (WorkerPool pool = new WorkerPool(executable(WireFormat.THRIFT_COMPACT), 1, GENEROUS)) {
      answersNormally(pool, "warm-up");
      long pid = pool.workerPids().get(0);
      for (String algorithm : List.of("test_sleep", "test_stubborn")) {
        long start = System.nanoTime();
        try {
          pool.call(sleepRequest(algorithm, 30, algorithm));
          check(false, algorithm + ": answered ok");
        } catch (WardenException.Timeout e) {
          double seconds = (System.nanoTime() - start) / 1e9;
          check(!(e instanceof WardenException.DeadlineExceeded), algorithm + ": the worker answered TIMEOUT");
          check(algorithm.equals(e.requestId()), algorithm + ": TIMEOUT carries the request id");
          check(seconds < 5, algorithm + ": TIMEOUT after " + seconds + " s");
          System.out.printf("--timeout-s 0.3, %s -> TIMEOUT after %.3f s%n", algorithm, seconds);
        }
        answersNormally(pool, "after " + algorithm);
      }
      // test_stubborn ignores the soft alarm: the worker re-executes itself in place (same pid)
      check(pool.workerPids().get(0) == pid, "the executable's own timeouts keep the worker's pid");
      check(pool.replacements() == 0, "no host-side replacement");
    } finally {
      options.clear();
      options.addAll(saved);
    }
  }

  // -------------------------------------------------------------------------- malformed frame

  /** Garbage, empty and half-formed requests get structured errors; the worker keeps serving. */
  private void malformedFrame() throws Exception {
    for (WireFormat format : WireFormat.values()) {
      try (WorkerPool pool = new WorkerPool(executable(format), 1, GENEROUS)) {
        long pid = pool.workerPids().get(0);
        List<byte[]> bad =
            List.of(
                new byte[0],
                "\u0000\u0001 not a request \u00ff".getBytes(StandardCharsets.ISO_8859_1),
                "{\"interface\": \"detect\", \"algorithm\": ".getBytes(StandardCharsets.UTF_8));
        for (byte[] body : bad) {
          byte[] answer = pool.callRaw(body);
          check(
              errorCode(format, answer) == ErrorCode.INVALID_INPUT,
              format.cliName + ": " + body.length + " bad bytes answered " + show(format, answer));
        }
        if (format.isThrift()) {
          try {
            pool.call(new Request().setInterface_name("detect").setRequest_id("no-algorithm"));
            check(false, "a request without an algorithm succeeded");
          } catch (WardenException.InvalidInput e) {
            check("no-algorithm".equals(e.requestId()), "InvalidInput carries the request id");
            System.out.println(format.cliName + ": " + e.getMessage());
          }
          answersNormally(pool, format.cliName + " after bad frames");
        } else {
          byte[] ok = pool.callRaw("{\"interface\":\"detect\",\"algorithm\":\"ksigma\",\"detect\":{\"dimensions\":[],\"timestamps\":[1,2,3],\"values\":[1.0,2.0,3.0]}}".getBytes(StandardCharsets.UTF_8));
          check(new String(ok, StandardCharsets.UTF_8).startsWith("{\"status\":\"ok\""), "json after bad frames");
        }
        check(pool.workerPids().get(0) == pid, format.cliName + ": same worker throughout");
      }
    }
  }

  private static ErrorCode errorCode(WireFormat format, byte[] answer) throws TException {
    if (format.isThrift()) {
      Response response = format.decode(new Response(), answer);
      return response.isSetError() ? response.getError().getCode() : null;
    }
    String text = new String(answer, StandardCharsets.UTF_8);
    for (ErrorCode code : ErrorCode.values()) {
      if (text.contains("\"code\":\"" + code.name() + "\"")) {
        return code;
      }
    }
    return null;
  }

  // ----------------------------------------------------------------------------- huge request

  /** 200 MB of real request (13M points, packed) is refused with a structured error. */
  private void hugeRequest() throws Exception {
    WireFormat format = WireFormat.THRIFT_COMPACT;
    int points = 200 * 1024 * 1024 / 16;
    ByteBuffer times = ByteBuffer.allocate(points * 8).order(ByteOrder.LITTLE_ENDIAN);
    ByteBuffer values = ByteBuffer.allocate(points * 8).order(ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < points; i++) {
      times.putLong(T0 + i);
      values.putDouble(i % 100);
    }
    times.flip();
    values.flip();
    byte[] body =
        format.encode(
            new Request()
                .setInterface_name("detect")
                .setAlgorithm("ksigma")
                .setRequest_id("huge")
                .setDetect(
                    new DetectPayload()
                        .setDimensions(List.of("host=huge"))
                        .setTimestamps_packed(times)
                        .setValues_packed(values)));
    System.out.printf("request of %.1f MB%n", body.length / 1e6);
    check(body.length > 200_000_000, "the request is over 200 MB");

    try (WorkerPool pool = new WorkerPool(executable(format), 1, GENEROUS)) {
      long pid = pool.workerPids().get(0);
      long start = System.nanoTime();
      byte[] answer = pool.callRaw(body);
      Response response = format.decode(new Response(), answer);
      System.out.printf(
          "serve: refused in %.3f s: %s%n", (System.nanoTime() - start) / 1e9, response.getError());
      check(response.isSetError() && response.getError().getCode() == ErrorCode.INVALID_INPUT,
          "serve answers INVALID_INPUT: " + response);
      check(response.getError().getMessage().contains("exceeds the limit"), "says the limit");
      answersNormally(pool, "after the huge request");
      check(pool.workerPids().get(0) == pid, "the same worker goes on serving");
    }

    long start = System.nanoTime();
    try {
      byte[] answer = new OneShotInvoker(executable(format)).invokeRaw(body, GENEROUS);
      Response response = format.decode(new Response(), answer);
      System.out.printf(
          "one-shot: refused in %.3f s: %s%n", (System.nanoTime() - start) / 1e9, response.getError());
      check(response.isSetError() && response.getError().getCode() == ErrorCode.INVALID_INPUT,
          "one-shot answers INVALID_INPUT: " + response);
    } catch (WardenException e) {
      check(false, "one-shot huge request: " + e.getMessage());
    }
  }

  // ----------------------------------------------------------------------------------- matrix

  private static final List<String> COLUMNS = List.of("inlet", "outlet", "return");
  private static final List<String> DIMENSIONS = List.of("host=jvm", "unit=pump");
  private static final String SVM = "one_class_svm";
  private static final String SVM_PARAMS = "{\"sigmas\": 6.0}";
  private static final int MATRIX_ROWS = 1200;
  private static final int FIT_ROWS = 1000;
  private static final int SPIKE_ROW = 1100;
  private static final int SPIKE_COLUMN = 1;
  private static final long STEP = 300;

  /**
   * Three correlated columns following one daily sine (a row every 5 minutes), small noise, one
   * missing cell, and one spike in one column ({@code outlet}) well after the first 1,000 rows.
   */
  private static Matrix machine() {
    Random random = new Random(7);
    long[] times = new long[MATRIX_ROWS];
    double[][] rows = new double[MATRIX_ROWS][];
    for (int i = 0; i < MATRIX_ROWS; i++) {
      times[i] = T0 + STEP * i;
      double day = Math.sin(i * 2 * Math.PI / 288);
      rows[i] =
          new double[] {
            10 + day + 0.05 * random.nextGaussian(),
            5 + 2 * day + 0.05 * random.nextGaussian(),
            20 - day + 0.05 * random.nextGaussian()
          };
    }
    rows[SPIKE_ROW][SPIKE_COLUMN] += 3.0;
    rows[1050][0] = Double.NaN;
    return Matrix.of(times, COLUMNS, rows);
  }

  /** One way to call: a format, lists or packed, and what that way answered. */
  private record MatrixRun(
      String label,
      MatrixScored stateless,
      String fitted,
      MatrixScored streamed,
      String streamedState,
      MatrixScored oneCall,
      String oneCallState) {}

  /**
   * one_class_svm on a 3-column matrix, in JSON, thrift-binary and thrift-compact, lists and
   * packed, through a serve worker: a stateless detect of all 1,200 rows; a fit on the first
   * 1,000, the other 200 streamed with the state (by reference, in chunks and row by row, a
   * re-delivered run of rows dropped) and the same 200 in one call with the state's bytes; one
   * one-shot call with the bytes. Every way gives the same detections, scores, contributions and
   * states; contributions are shares summing to 1 and the spike blames its column; a ragged or
   * mis-sized matrix, a matrix to ksigma, and a state asked about other columns are structured
   * errors, after which the same worker answers as before.
   */
  private void matrix() {
    Matrix machine = machine();
    long spike = T0 + STEP * SPIKE_ROW;
    List<MatrixRun> runs = new ArrayList<>();
    for (WireFormat format : WireFormat.values()) {
      try (WorkerPool pool = new WorkerPool(executable(format), 1, GENEROUS)) {
        long pid = pool.workerPids().get(0);
        MatrixDetector packed = MatrixDetector.pooled(pool, GENEROUS);
        for (MatrixDetector detector : List.of(packed, packed.withLists())) {
          String label = format.cliName + (detector == packed ? " packed" : " lists");
          runs.add(matrixRun(label, detector, machine, spike));
        }
        matrixErrors(format, pool, packed, machine, runs.get(0));
        check(pool.workerPids().get(0) == pid, format.cliName + ": one worker throughout");
        check(pool.replacements() == 0, format.cliName + ": no worker replaced");
      }
    }
    MatrixRun first = runs.get(0);
    OneShotInvoker invoker = new OneShotInvoker(executable(WireFormat.THRIFT_BINARY));
    MatrixDetector oneShot = MatrixDetector.oneShot(invoker, GENEROUS).withLists();
    TrainedModel model = oneShot.fit(SVM, SVM_PARAMS, DIMENSIONS, machine.slice(0, FIT_ROWS));
    check(model.sha256().equals(first.fitted()), "one-shot thrift-binary: the same fitted state");
    MatrixScored bytes = oneShot.detect(model, machine.slice(FIT_ROWS, MATRIX_ROWS));
    sameScored("one-shot thrift-binary lists, one call with the state", bytes, first.oneCall());
    check(
        bytes.next().sha256().equals(first.oneCallState()),
        "one-shot thrift-binary: the same state after");
    for (MatrixRun run : runs) {
      String versus = run.label() + " vs " + first.label();
      sameScored(versus + ", stateless", run.stateless(), first.stateless());
      sameScored(versus + ", streamed", run.streamed(), first.streamed());
      sameScored(versus + ", one call with the state", run.oneCall(), first.oneCall());
      check(run.fitted().equals(first.fitted()), versus + ": another fitted state");
      check(run.streamedState().equals(first.streamedState()), versus + ": another state after");
      check(run.oneCallState().equals(first.oneCallState()), versus + ": another one-call state");
    }
    sameScored("streamed vs one call", first.streamed(), first.oneCall());
    check(
        first.streamedState().equals(first.oneCallState()),
        "streaming leaves the state one call does");
    System.out.printf(
        "matrix: %d ways agree: %d detections stateless, %d streamed, the spike's shares %s%n",
        runs.size(), first.stateless().anomalies().length, first.streamed().anomalies().length,
        shares(first.streamed(), spike));
  }

  private MatrixRun matrixRun(String label, MatrixDetector detector, Matrix machine, long spike) {
    MatrixScored stateless = detector.detect(SVM, SVM_PARAMS, DIMENSIONS, machine);
    checkShares(label + " stateless", stateless, machine.rowCount(), spike);

    MatrixStream stream =
        detector.fitStream(SVM, SVM_PARAMS, DIMENSIONS, machine.slice(0, FIT_ROWS));
    TrainedModel fitted = stream.model();
    check(
        fitted.seen().points() == FIT_ROWS
            && fitted.seen().end().getAsLong() == T0 + STEP * (FIT_ROWS - 1),
        label + ": the fit saw " + fitted.seen());
    // 990..1060 (the first 10 rows re-delivered: dropped), 1060..1090, then row by row around the
    // spike, then the rest at once
    List<MatrixScored> parts = new ArrayList<>();
    parts.add(stream.next(machine.slice(FIT_ROWS - 10, 1060)));
    parts.add(stream.next(machine.slice(1060, 1090)));
    for (int row = 1090; row < 1110; row++) {
      parts.add(stream.next(machine.slice(row, row + 1)));
    }
    check(
        stream.next(machine.slice(1100, 1110)).times().length == 0,
        label + ": rows the state has seen are not sent again");
    parts.add(stream.next(machine.slice(1110, MATRIX_ROWS)));
    MatrixScored streamed = joined(parts);
    check(
        streamed.times().length == MATRIX_ROWS - FIT_ROWS,
        label + ": streamed " + streamed.times().length + " rows");
    check(
        stream.stats().calls() == parts.size() && stream.stats().byReference() == parts.size(),
        label + ": every streamed call named the state: " + stream.stats());
    checkShares(label + " streamed", streamed, MATRIX_ROWS - FIT_ROWS, spike);
    TrainedModel after = stream.model();
    check(after.seen().points() == MATRIX_ROWS, label + ": the state after saw " + after.seen());

    MatrixScored oneCall = detector.detect(fitted, machine.slice(FIT_ROWS, MATRIX_ROWS));
    checkShares(label + " one call", oneCall, MATRIX_ROWS - FIT_ROWS, spike);
    return new MatrixRun(
        label, stateless, fitted.sha256(), streamed, after.sha256(), oneCall,
        oneCall.next().sha256());
  }

  /** Every detection's shares: one per column, >= 0, summing to 1; the spike blames its column. */
  private void checkShares(String label, MatrixScored scored, int rows, long spike) {
    check(scored.times().length == rows, label + ": " + scored.times().length + " rows scored");
    check(
        scored.contributions().length == scored.anomalies().length
            && scored.scores().length == scored.anomalies().length,
        label + ": a score and a row of shares per detection");
    for (int i = 0; i < scored.contributions().length; i++) {
      double[] shares = scored.contributions()[i];
      double sum = 0;
      boolean nonNegative = true;
      for (double share : shares) {
        sum += share;
        nonNegative &= share >= 0;
      }
      check(
          shares.length == COLUMNS.size() && nonNegative && Math.abs(sum - 1) <= 1e-9,
          label + ": detection " + i + " has shares " + Arrays.toString(shares));
    }
    check(
        !scored.hasExpected() || scored.expected().length == rows,
        label + ": an expected matrix of another height");
    int at = scored.detectionAt(spike);
    check(at >= 0, label + ": the spike is not among " + Arrays.toString(scored.anomalies()));
    if (at >= 0) {
      check(
          scored.blamed(at).equals(COLUMNS.get(SPIKE_COLUMN)),
          label + ": the spike blames " + scored.blamed(at) + ": " + shares(scored, spike));
    }
  }

  /** Bit for bit the same detections, scores and contributions. */
  private void sameScored(String what, MatrixScored got, MatrixScored want) {
    check(
        Arrays.equals(got.anomalies(), want.anomalies()),
        what + ": detections " + Arrays.toString(got.anomalies()) + " vs "
            + Arrays.toString(want.anomalies()));
    check(
        Arrays.equals(got.scores(), want.scores()),
        what + ": scores " + Arrays.toString(got.scores()) + " vs "
            + Arrays.toString(want.scores()));
    check(
        Arrays.deepEquals(got.contributions(), want.contributions()),
        what + ": contributions " + Arrays.deepToString(got.contributions()) + " vs "
            + Arrays.deepToString(want.contributions()));
    check(
        Arrays.deepEquals(got.expected(), want.expected()),
        what + ": another expected matrix");
  }

  private static String shares(MatrixScored scored, long time) {
    int at = scored.detectionAt(time);
    return at < 0 ? "(none)" : COLUMNS + "=" + Arrays.toString(scored.contributions()[at]);
  }

  /** The answers of consecutive calls as one. */
  private static MatrixScored joined(List<MatrixScored> parts) {
    List<Long> times = new ArrayList<>();
    List<Long> anomalies = new ArrayList<>();
    List<Double> scores = new ArrayList<>();
    List<double[]> shares = new ArrayList<>();
    List<double[]> expected = new ArrayList<>();
    boolean band = true;
    TrainedModel last = null;
    for (MatrixScored part : parts) {
      for (long t : part.times()) {
        times.add(t);
      }
      for (int i = 0; i < part.anomalies().length; i++) {
        anomalies.add(part.anomalies()[i]);
        scores.add(part.scores()[i]);
        shares.add(part.contributions()[i]);
      }
      band &= part.hasExpected();
      if (part.hasExpected()) {
        expected.addAll(List.of(part.expected()));
      }
      last = part.next();
    }
    return new MatrixScored(
        times.stream().mapToLong(Long::longValue).toArray(), COLUMNS,
        anomalies.stream().mapToLong(Long::longValue).toArray(),
        scores.stream().mapToDouble(Double::doubleValue).toArray(),
        shares.toArray(double[][]::new), band ? expected.toArray(double[][]::new) : null, last);
  }

  /**
   * What the executable refuses, answered as structured errors by the serve worker, which then
   * answers a good request as before: a ragged matrix and a packed one of another width
   * (INVALID_INPUT naming the matrix), a matrix to ksigma (UNKNOWN_ALGORITHM, detect and fit),
   * rows of other columns with a state (INCOMPATIBLE_STATE). Java refuses a ragged matrix itself.
   */
  private void matrixErrors(
      WireFormat format,
      WorkerPool pool,
      MatrixDetector detector,
      Matrix machine,
      MatrixRun reference) {
    String name = format.cliName;
    try {
      Matrix.of(new long[] {T0, T0 + STEP}, List.of("a", "b"), new double[][] {{1, 2}, {3}});
      check(false, "Java made a ragged matrix");
    } catch (IllegalArgumentException e) {
      check(e.getMessage().startsWith("row 1 has 1 values"), "Java says " + e.getMessage());
    }
    try {
      Matrix.of(new long[] {T0}, List.of("a", "b"), new double[][] {{1, 2}, {3, 4}});
      check(false, "Java made a matrix of more rows than times");
    } catch (IllegalArgumentException e) {
      check(e.getMessage().contains("one row per time"), "Java says " + e.getMessage());
    }
    List<byte[]> bad = new ArrayList<>();
    if (format.isThrift()) {
      for (boolean packed : new boolean[] {false, true}) {
        DetectPayload detect =
            new DetectPayload().setColumns(List.of("a", "b")).setTimestamps(List.of(T0, T0 + STEP));
        if (packed) {
          detect.setMatrix_packed(PackedArrays.pack(new double[] {1, 2, 3}));
        } else {
          detect.setMatrix(List.of(List.of(1.0, 2.0), List.of(3.0)));
        }
        bad.add(
            format.encode(
                new Request().setInterface_name("detect").setAlgorithm(SVM).setRequest_id("bad")
                    .setDetect(detect)));
      }
    } else {
      String head =
          "{\"interface\":\"detect\",\"algorithm\":\"" + SVM + "\",\"request_id\":\"bad\","
              + "\"detect\":{\"columns\":[\"a\",\"b\"],\"timestamps\":[" + T0 + ","
              + (T0 + STEP) + "],";
      bad.add((head + "\"matrix\":[[1.0,2.0],[3.0]]}}").getBytes(StandardCharsets.UTF_8));
      String threeCells = Base64.getEncoder().encodeToString(
          PackedArrays.pack(new double[] {1, 2, 3}).array());
      bad.add((head + "\"matrix\":{\"dtype\":\"float64\",\"base64\":\"" + threeCells + "\"}}}")
          .getBytes(StandardCharsets.UTF_8));
    }
    for (int i = 0; i < bad.size(); i++) {
      String what = name + (i == 0 ? " ragged" : " packed of another width");
      byte[] answer = pool.callRaw(bad.get(i));
      String[] error = error(format, answer);
      check(
          "INVALID_INPUT".equals(error[0])
              && error[1] != null
              && error[1].startsWith("detect.matrix"),
          what + ": answered " + show(format, answer));
      System.out.println(what + " -> " + error[0] + " " + error[1]);
    }
    try {
      detector.detect("ksigma", "{}", DIMENSIONS, machine);
      check(false, name + ": ksigma scored a matrix");
    } catch (WardenException.UnknownAlgorithm e) {
      check(e.getMessage().contains("cannot score a matrix"), name + ": " + e.getMessage());
      System.out.println(name + " ksigma detect -> " + e.getMessage());
    }
    try {
      detector.fit("ksigma", "{}", DIMENSIONS, machine);
      check(false, name + ": ksigma fitted a matrix");
    } catch (WardenException.UnknownAlgorithm e) {
      check(e.getMessage().contains("matrix"), name + ": ksigma says " + e.getMessage());
    }
    TrainedModel fitted = detector.fit(SVM, SVM_PARAMS, DIMENSIONS, machine.slice(0, FIT_ROWS));
    Matrix tail = machine.slice(FIT_ROWS, MATRIX_ROWS);
    try {
      List<String> others = List.of("inlet", "outlet", "exhaust");
      detector.detect(fitted, Matrix.of(tail.times(), others, tail.rows()));
      check(false, name + ": a state scored other columns");
    } catch (WardenException.IncompatibleState e) {
      System.out.println(name + " other columns -> " + e.getMessage());
    }
    sameScored(
        name + " after the errors",
        detector.detect(SVM, SVM_PARAMS, DIMENSIONS, machine),
        reference.stateless());
  }

  /** An error answer's code and field (null when absent), in either format. */
  private static String[] error(WireFormat format, byte[] answer) {
    if (format.isThrift()) {
      try {
        warden.algos.thrift.Error error = format.decode(new Response(), answer).getError();
        return error == null
            ? new String[] {null, null}
            : new String[] {String.valueOf(error.getCode()), error.getField()};
      } catch (TException e) {
        return new String[] {null, null};
      }
    }
    Map<?, ?> root = MiniJson.object(MiniJson.parse(answer), "the response");
    if (!(root.get("error") instanceof Map<?, ?> error)) {
      return new String[] {null, null};
    }
    return new String[] {
      error.get("code") instanceof String code ? code : null,
      error.get("field") instanceof String field ? field : null
    };
  }

  private static void sleep(long millis) {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}

package warden.algos.host;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
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

  private static void sleep(long millis) {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}

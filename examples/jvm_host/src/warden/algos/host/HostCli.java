package warden.algos.host;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import warden.algos.thrift.Response;

/**
 * Send a request file to the executable and show the answer, the way the platform would.
 *
 * <pre>
 * java -cp CLASSPATH warden.algos.host.HostCli [--command CMD] [--format F] [--serve]
 *      [--repeat N] [--deadline-ms MS] [--option ARG]... [--raw] REQUEST_FILE|-
 * </pre>
 *
 * The format defaults to the file's extension (.json, .thrift-binary, .thrift-compact). Thrift
 * answers are shown decoded; JSON ones as they came. Exit status: 0 ok, 1 error response (its code
 * on stderr), 2 the host failed (could not start the executable, worker died, deadline).
 */
public final class HostCli {
  private HostCli() {}

  public static void main(String[] args) throws IOException {
    String command = System.getenv().getOrDefault("WARDEN_ALGOS_COMMAND", "warden-algos");
    WireFormat format = null;
    boolean serve = false;
    boolean raw = false;
    int repeat = 1;
    long deadlineMs = 30_000;
    List<String> options = new ArrayList<>();
    String file = null;
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--command" -> command = args[++i];
        case "--format" -> format = WireFormat.fromCliName(args[++i]);
        case "--serve" -> serve = true;
        case "--raw" -> raw = true;
        case "--repeat" -> repeat = Integer.parseInt(args[++i]);
        case "--deadline-ms" -> deadlineMs = Long.parseLong(args[++i]);
        case "--option" -> options.add(args[++i]);
        case "-h", "--help" -> {
          System.out.println(
              "usage: HostCli [--command CMD] [--format F] [--serve] [--repeat N] "
                  + "[--deadline-ms MS] [--option ARG]... [--raw] REQUEST_FILE|-");
          return;
        }
        default -> file = args[i];
      }
    }
    if (file == null) {
      System.err.println("HostCli: give a request file (or - for stdin); --help for usage");
      System.exit(2);
    }
    if (format == null) {
      format = file.equals("-") ? WireFormat.JSON : formatOf(file);
    }
    byte[] request = file.equals("-") ? System.in.readAllBytes() : Files.readAllBytes(Path.of(file));
    Executable executable =
        Executable.of(command, format).withOptions(options.toArray(String[]::new));
    Duration deadline = Duration.ofMillis(deadlineMs);

    byte[] answer = null;
    try {
      if (serve) {
        try (WorkerPool pool = new WorkerPool(executable, 1, deadline)) {
          for (int i = 0; i < repeat; i++) {
            long start = System.nanoTime();
            answer = pool.callRaw(request);
            report(i, start);
          }
        }
      } else {
        OneShotInvoker invoker = new OneShotInvoker(executable);
        for (int i = 0; i < repeat; i++) {
          long start = System.nanoTime();
          answer = invoker.invokeRaw(request, deadline);
          report(i, start);
        }
      }
    } catch (WardenException e) {
      System.err.println("host failure: " + e.getMessage());
      System.exit(2);
    }
    System.exit(show(format, answer, raw, System.out));
  }

  private static int show(WireFormat format, byte[] answer, boolean raw, PrintStream out)
      throws IOException {
    if (raw || !format.isThrift()) {
      out.write(answer);
      out.println();
      out.flush();
      return raw ? 0 : (new String(answer, java.nio.charset.StandardCharsets.UTF_8)
          .contains("\"status\":\"error\"") ? 1 : 0);
    }
    try {
      Response response = Responses.decode(format, answer);
      out.println(response);
      return 0;
    } catch (WardenException e) {
      out.println(e.getMessage());
      System.err.println("error response: " + e.code());
      return 1;
    }
  }

  private static void report(int attempt, long startNanos) {
    System.err.printf("attempt %d: %.3f ms%n", attempt + 1, (System.nanoTime() - startNanos) / 1e6);
  }

  private static WireFormat formatOf(String file) {
    String extension = file.substring(file.lastIndexOf('.') + 1);
    return WireFormat.fromCliName(extension);
  }
}

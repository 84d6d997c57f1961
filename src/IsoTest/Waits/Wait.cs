using System.Net;
using System.Text.RegularExpressions;
using IsoTest.Waits;

namespace IsoTest;

/// <summary>
/// Readiness conditions for <c>ContainerBuilder.WaitFor</c>. Combine them with
/// <see cref="WaitStrategy.And"/>; bound them with <see cref="WaitStrategy.WithTimeout"/> (default 60 s).
/// A wait fails at once when the container exits, and names the unmet condition when it times out.
/// </summary>
public static class Wait
{
    /// <summary>Ready when something accepts TCP connections on <paramref name="port"/> inside the container (publish it with <c>WithPort</c>).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="port"/> is not in 1..65535.</exception>
    public static WaitStrategy ForPort(int port) => new PortWaitStrategy(CheckPort(port));

    /// <summary>Ready when the container has written <paramref name="times"/> lines matching the regular expression <paramref name="pattern"/> (stdout or stderr).</summary>
    /// <exception cref="ArgumentException"><paramref name="pattern"/> is not a valid regular expression.</exception>
    public static WaitStrategy ForLogMessage(string pattern, int times = 1)
    {
        ArgumentException.ThrowIfNullOrEmpty(pattern);
        return ForLogMessage(new Regex(pattern, RegexOptions.CultureInvariant), times);
    }

    /// <summary>Ready when the container has written <paramref name="times"/> lines matching <paramref name="pattern"/> (stdout or stderr).</summary>
    public static WaitStrategy ForLogMessage(Regex pattern, int times = 1)
    {
        ArgumentNullException.ThrowIfNull(pattern);
        ArgumentOutOfRangeException.ThrowIfLessThan(times, 1);
        return new LogMessageWaitStrategy(pattern, times);
    }

    /// <summary>Ready when <c>GET <paramref name="path"/></c> on the published <paramref name="port"/> answers <paramref name="expectedStatus"/>.</summary>
    /// <param name="path">Absolute path and optional query, e.g. <c>/health</c>.</param>
    /// <param name="port">The container port (publish it with <c>WithPort</c>).</param>
    /// <param name="expectedStatus">The status that means ready.</param>
    public static WaitStrategy ForHttp(string path, int port, HttpStatusCode expectedStatus = HttpStatusCode.OK) =>
        new HttpWaitStrategy(CheckPath(path), CheckPort(port), (status, _) => status == expectedStatus, $"answering {(int)expectedStatus}");

    /// <summary>Ready when <c>GET <paramref name="path"/></c> on the published <paramref name="port"/> gets an answer that <paramref name="isReady"/> accepts.</summary>
    /// <param name="path">Absolute path and optional query, e.g. <c>/health</c>.</param>
    /// <param name="port">The container port (publish it with <c>WithPort</c>).</param>
    /// <param name="isReady">Given the status and the body, true when the container is ready.</param>
    public static WaitStrategy ForHttp(string path, int port, Func<HttpStatusCode, string, bool> isReady)
    {
        ArgumentNullException.ThrowIfNull(isReady);
        return new HttpWaitStrategy(CheckPath(path), CheckPort(port), isReady, "answering as expected");
    }

    /// <summary>Ready when <paramref name="command"/>, run in the container, exits with 0 (e.g. <c>pg_isready</c>).</summary>
    public static WaitStrategy ForCommand(params string[] command)
    {
        ArgumentNullException.ThrowIfNull(command);
        if (command.Length == 0 || string.IsNullOrEmpty(command[0]))
        {
            throw new ArgumentException("Give the program to run and its arguments, e.g. Wait.ForCommand(\"pg_isready\", \"-h\", \"127.0.0.1\").", nameof(command));
        }

        return new CommandWaitStrategy([.. command]);
    }

    /// <summary>
    /// Ready when the image's <c>HEALTHCHECK</c> reports healthy, as <c>docker ps</c> would show it: on Docker the
    /// daemon's own status; on the built-in engine the engine runs the check through its exec on the image's
    /// interval, timeout, retries and start period. Fails at once when the check reports unhealthy, and with a
    /// clear error when the image has no healthcheck.
    /// </summary>
    public static WaitStrategy ForHealthcheck() => new HealthcheckWaitStrategy();

    /// <summary>Ready when <paramref name="path"/> exists inside the container.</summary>
    /// <param name="path">An absolute path inside the container.</param>
    public static WaitStrategy ForFile(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!path.StartsWith('/'))
        {
            throw new ArgumentException($"'{path}' is not an absolute path inside the container: start it with '/'.", nameof(path));
        }

        return new FileWaitStrategy(path);
    }

    private static int CheckPort(int port)
    {
        if (port is < 1 or > 65535)
        {
            throw new ArgumentOutOfRangeException(nameof(port), port, "A TCP port is in 1..65535.");
        }

        return port;
    }

    private static string CheckPath(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!path.StartsWith('/'))
        {
            throw new ArgumentException($"'{path}' is not an HTTP path: start it with '/', e.g. \"/health\".", nameof(path));
        }

        return path;
    }
}

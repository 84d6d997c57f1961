using System.Globalization;

namespace IsoTest;

/// <summary>Where a container's healthcheck stands (Docker's <c>State.Health.Status</c>).</summary>
public enum HealthStatus
{
    /// <summary>The container has no healthcheck (its image defines none, or <c>NONE</c>).</summary>
    None,

    /// <summary>No check has passed yet and the retries are not used up.</summary>
    Starting,

    /// <summary>The last check passed.</summary>
    Healthy,

    /// <summary>As many checks in a row as the healthcheck's retries failed (after its start period).</summary>
    Unhealthy,
}

/// <summary>
/// An image's healthcheck (Dockerfile <c>HEALTHCHECK</c>): the command and its timing, with Docker's defaults
/// (30 s interval, 30 s timeout, no start period, 3 retries) for what the image leaves at zero.
/// </summary>
/// <param name="Test">Docker's form: <c>["CMD", program, args...]</c> or <c>["CMD-SHELL", "command line"]</c>.</param>
/// <param name="Interval">The pause before each check.</param>
/// <param name="Timeout">How long one check may run before it counts as failed.</param>
/// <param name="StartPeriod">A time after start in which failures do not count (a pass still makes it healthy).</param>
/// <param name="Retries">Consecutive failures that make it unhealthy.</param>
public sealed record ContainerHealthcheck(IReadOnlyList<string> Test, TimeSpan Interval, TimeSpan Timeout, TimeSpan StartPeriod, int Retries)
{
    /// <summary>Docker's default interval and timeout.</summary>
    internal static readonly TimeSpan DefaultInterval = TimeSpan.FromSeconds(30);

    /// <summary>Docker's default number of retries.</summary>
    internal const int DefaultRetries = 3;

    /// <summary>The argv one check runs: the <c>CMD</c> form as given, <c>CMD-SHELL</c> through <c>/bin/sh -c</c>.</summary>
    public IReadOnlyList<string> Command => Test[0] == "CMD-SHELL" ? ["/bin/sh", "-c", string.Join(' ', Test.Skip(1))] : [.. Test.Skip(1)];

    /// <summary>
    /// The healthcheck an image config describes (Docker's field names, durations in nanoseconds), or null when
    /// it has none or disables it (<c>["NONE"]</c>). Zeros take Docker's defaults.
    /// </summary>
    /// <param name="test">The config's <c>Test</c>.</param>
    /// <param name="intervalNs">Its <c>Interval</c> in nanoseconds (0: the default).</param>
    /// <param name="timeoutNs">Its <c>Timeout</c> in nanoseconds (0: the default).</param>
    /// <param name="startPeriodNs">Its <c>StartPeriod</c> in nanoseconds (0: none).</param>
    /// <param name="retries">Its <c>Retries</c> (0: the default).</param>
    /// <exception cref="FormatException">The test is neither <c>CMD</c>, <c>CMD-SHELL</c> nor <c>NONE</c>.</exception>
    public static ContainerHealthcheck? FromImageConfig(IReadOnlyList<string>? test, long intervalNs, long timeoutNs, long startPeriodNs, int retries)
    {
        if (test is null || test.Count == 0 || test[0] == "NONE")
        {
            return null;
        }

        if (test[0] is not ("CMD" or "CMD-SHELL") || test.Count < 2)
        {
            throw new FormatException($"the image's healthcheck test [{string.Join(", ", test)}] is neither [\"CMD\", program, ...], [\"CMD-SHELL\", command] nor [\"NONE\"]");
        }

        static TimeSpan Ns(long ns, TimeSpan fallback) => ns > 0 ? TimeSpan.FromTicks(ns / 100) : fallback;
        return new ContainerHealthcheck([.. test], Ns(intervalNs, DefaultInterval), Ns(timeoutNs, DefaultInterval), Ns(startPeriodNs, TimeSpan.Zero), retries > 0 ? retries : DefaultRetries);
    }

    /// <inheritdoc/>
    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"{string.Join(' ', Test)} (every {Interval.TotalSeconds:0.###} s, timeout {Timeout.TotalSeconds:0.###} s, start period {StartPeriod.TotalSeconds:0.###} s, {Retries} retries)");
}

/// <summary>A container's health as its backend last saw it.</summary>
/// <param name="Status">Starting, healthy, unhealthy, or none.</param>
/// <param name="FailingStreak">Consecutive failed checks so far.</param>
/// <param name="LastOutput">What the last check printed (or why it failed), trimmed; null before the first.</param>
public sealed record ContainerHealth(HealthStatus Status, int FailingStreak = 0, string? LastOutput = null)
{
    /// <summary>A container without a healthcheck.</summary>
    public static ContainerHealth None { get; } = new(HealthStatus.None);
}

/// <summary>
/// A container whose backend runs its image's healthcheck (Docker: the daemon does; the built-in engine:
/// through its exec, on the image's interval/timeout/retries/start period). <c>Wait.ForHealthcheck()</c> uses it.
/// </summary>
public interface IContainerHealth
{
    /// <summary>The healthcheck the container runs, or null when it has none.</summary>
    ContainerHealthcheck? Healthcheck { get; }

    /// <summary>Its health now.</summary>
    Task<ContainerHealth> GetHealthAsync(CancellationToken cancellationToken = default);
}

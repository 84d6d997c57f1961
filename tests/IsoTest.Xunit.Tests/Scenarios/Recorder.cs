using System.Collections.Concurrent;

namespace IsoTest.Xunit.Scenarios;

/// <summary>What happened during one scenario run, in order. The harness runs one scenario run at a time.</summary>
public static class Recorder
{
    private static long s_sequence;

    public static ConcurrentQueue<Event> Events { get; } = new();

    public static void Reset() => Events.Clear();

    public static void Add(string kind, string definition, string containerId, string? test = null, string? detail = null) =>
        Events.Enqueue(new Event(Interlocked.Increment(ref s_sequence), kind, definition, containerId, test, detail));

    /// <summary>A test saw <paramref name="container"/> (as parameter <paramref name="as"/>).</summary>
    public static void Used(string test, IContainer container, string @as = "", string? detail = null) =>
        Add("used", container.Spec.Labels.TryGetValue("isotest.fixture", out var d) ? d.Split('.', '+')[^1] : "?", container.Id, test + (@as.Length > 0 ? ":" + @as : ""), detail);

    public sealed record Event(long Sequence, string Kind, string Definition, string ContainerId, string? Test, string? Detail);
}

using System.Text;

namespace IsoTest.Xunit.Fixtures;

/// <summary>Formats container output for a test's output.</summary>
internal static class ContainerOutput
{
    /// <summary>The last lines, for error messages.</summary>
    public static string Tail(IContainer container, int lines = 20)
    {
        try
        {
            var logs = container.GetLogs();
            return string.Join('\n', logs.Skip(Math.Max(0, logs.Count - lines)).Select(l => l.Text));
        }
        catch (Exception e) when (e is InvalidOperationException or ObjectDisposedException)
        {
            return "";
        }
    }

    /// <summary>Lines to show for one container after a test: all of them for a per-test container, those written since <paramref name="testStarted"/> for a shared one.</summary>
    public static IReadOnlyList<LogLine> Snapshot(IContainer container, Lifetime lifetime, DateTimeOffset testStarted)
    {
        IReadOnlyList<LogLine> logs;
        try
        {
            logs = container.GetLogs();
        }
        catch (Exception e) when (e is InvalidOperationException or ObjectDisposedException)
        {
            return [];
        }

        return lifetime == Lifetime.Test ? logs : [.. logs.Where(l => l.Timestamp >= testStarted)];
    }

    public static void Append(StringBuilder output, FixtureDeclaration declaration, IContainer container, IReadOnlyList<LogLine> lines)
    {
        if (output.Length > 0 && output[^1] != '\n')
        {
            output.Append('\n');
        }

        output.Append("----- ").Append(declaration).Append(": container ").Append(container.Name)
            .Append(" (id ").Append(container.Id).Append(", ").Append(FixtureStarter.Describe(declaration.Lifetime))
            .Append(declaration.Lifetime == Lifetime.Test ? "" : "; lines written during this test")
            .Append(lines.Count == 0 ? ") wrote nothing -----\n" : ") output -----\n");
        foreach (var line in lines)
        {
            output.Append(line).Append('\n');
        }
    }
}

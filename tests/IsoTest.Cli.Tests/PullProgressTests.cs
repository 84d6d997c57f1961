using System.Diagnostics;
using System.Text.RegularExpressions;
using IsoTest.Cli;
using IsoTest.TestSupport;

namespace IsoTest.Cli.Tests;

/// <summary>
/// <c>isotest pull</c> and <c>run --pull</c> progress: plain lines when the output is not a terminal (or NO_COLOR,
/// TERM=dumb), a bar per layer on one; pulled from Debian's docker-registry holding the busybox image.
/// </summary>
[Collection("CliImages")]
public sealed partial class PullProgressTests : IDisposable
{
    private readonly BusyboxInRegistry _busybox = new();

    private string Image => _busybox.Image;

    private string Store => _busybox.Store;

    public void Dispose() => _busybox.Dispose();

    private static async Task<(int Exit, string Out, string Err)> RunAsync(bool terminal, params string[] args)
    {
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        var exit = await Program.RunAsync(args, stdout, stderr, isTerminal: _ => terminal);
        return (exit, stdout.ToString(), stderr.ToString());
    }

    [Fact]
    public async Task Pull_NotATerminal_OneLinePerLayerAndPhase_NoEscapes()
    {
        var (exit, stdout, stderr) = await RunAsync(false, "pull", Image);

        Assert.True(exit == 0, stderr);
        Assert.DoesNotContain('\u001b', stdout);
        var layers = stdout.Split('\n').Where(l => l.EndsWith(": Pull complete", StringComparison.Ordinal)).ToArray();
        Assert.NotEmpty(layers);
        Assert.All(layers, l => Assert.Matches("^[0-9a-f]{12}: Pull complete$", l));
        Assert.Contains(": Download complete\n", stdout, StringComparison.Ordinal);
        Assert.Contains($"Status: downloaded {Image}", stdout, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("NO_COLOR", "1")]
    [InlineData("TERM", "dumb")]
    public async Task Pull_TerminalButPlainAsked_PlainLines(string variable, string value)
    {
        var before = Environment.GetEnvironmentVariable(variable);
        Environment.SetEnvironmentVariable(variable, value);
        try
        {
            var (exit, stdout, stderr) = await RunAsync(true, "pull", Image);

            Assert.True(exit == 0, stderr);
            Assert.DoesNotContain('\u001b', stdout);
            Assert.Contains(": Pull complete\n", stdout, StringComparison.Ordinal);
        }
        finally
        {
            Environment.SetEnvironmentVariable(variable, before);
        }
    }

    [Fact]
    public async Task Pull_OnATerminal_ABarPerLayer()
    {
        var (exit, stdout, stderr) = await RunAsync(true, "pull", Image);

        Assert.True(exit == 0, stderr);
        Assert.Contains("\u001b[", stdout, StringComparison.Ordinal);   // cursor moves and colours: a live display
        var ids = new HashSet<string>(LayerRow().Matches(Plain(stdout)).Select(m => m.Groups[1].Value));
        Assert.NotEmpty(ids);
        // The last frame: every layer's row at 100 % with its bar.
        foreach (var id in ids)
        {
            Assert.Matches($"{id} Pull complete +━+ +100%", Plain(stdout));
        }

        Assert.DoesNotMatch("[0-9a-f]{12}: Pull complete", stdout); // not the plain form
    }

    [Fact]
    public async Task RunWithPull_ShowsProgressOnStderr_OutputStaysClean()
    {
        var (exit, stdout, stderr) = await RunAsync(false, "run", "--rm", "--pull", "always", Image, "echo", "hello");

        Assert.True(exit == 0, stderr);
        Assert.Equal("hello\n", stdout);
        Assert.Contains(": Pull complete\n", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void TheCommand_OnAPseudoTerminal_DrawsBars_ThroughAPipe_PrintsLines()
    {
        var cli = typeof(Program).Assembly.Location;
        var command = $"dotnet {cli} pull {Image}";

        // script(1) gives the command a pty as its stdout, as an interactive shell would.
        var onTerminal = Run("script", ["-qfec", command, "/dev/null"], ("TERM", "xterm-256color"));
        Assert.True(onTerminal.Exit == 0, onTerminal.Output);
        Assert.Contains("\u001b[", onTerminal.Output, StringComparison.Ordinal);
        Assert.Matches("[0-9a-f]{12} (Pull complete|Already exists) +━+ +100%", Plain(onTerminal.Output));

        var piped = Run("dotnet", [cli, "pull", Image], ("TERM", "xterm-256color"));
        Assert.True(piped.Exit == 0, piped.Output);
        Assert.DoesNotContain('\u001b', piped.Output);
        Assert.Matches("(?m)^[0-9a-f]{12}: (Pull complete|Already exists)$", piped.Output);
    }

    private (int Exit, string Output) Run(string program, string[] args, (string Name, string Value) variable)
    {
        var start = new ProcessStartInfo(program, args) { RedirectStandardOutput = true, RedirectStandardError = true };
        start.Environment["ISOTEST_IMAGE_STORE"] = Store;
        start.Environment[variable.Name] = variable.Value;
        start.Environment.Remove("NO_COLOR");
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEnd();
        Assert.True(process.WaitForExit(TimeSpan.FromMinutes(2)), "isotest pull did not finish");
        return (process.ExitCode, stdout + stderr.Result);
    }

    /// <summary>The text without ANSI escape sequences.</summary>
    private static string Plain(string text) => Escape().Replace(text, "");

    [GeneratedRegex(@"\u001b\[[0-9;?]*[A-Za-z]")]
    private static partial Regex Escape();

    [GeneratedRegex("([0-9a-f]{12}) (Pull complete|Downloading|Download complete|Extracting|Already exists)")]
    private static partial Regex LayerRow();
}

/// <summary>
/// The busybox image (.ci/images.sh) pushed to a Debian docker-registry of its own, and an empty image store that
/// ISOTEST_IMAGE_STORE points at while it lives (tests that use it share the "CliImages" collection).
/// </summary>
internal sealed class BusyboxInRegistry : IDisposable
{
    private readonly string? _before = Environment.GetEnvironmentVariable("ISOTEST_IMAGE_STORE");
    private readonly LocalRegistry _registry;

    public BusyboxInRegistry()
    {
        DebianImages.EnsureBuilt();
        _registry = LocalRegistry.Start();
        _registry.Push(DebianImages.Layout, "docker.io/isotest/busybox:latest", "tools/busybox:1");
        Environment.SetEnvironmentVariable("ISOTEST_IMAGE_STORE", Store);
    }

    public string Store { get; } = Directory.CreateTempSubdirectory("isotest-cli-pull-").FullName;

    public string Image => $"{_registry.Host}/tools/busybox:1";

    public void Dispose()
    {
        Environment.SetEnvironmentVariable("ISOTEST_IMAGE_STORE", _before);
        _registry.Dispose();
        using var rm = Process.Start("chmod", ["-R", "u+rwX", Store]);
        rm?.WaitForExit();
        Directory.Delete(Store, recursive: true);
    }
}

using IsoTest.Cli.CommandLine;
using Spectre.Console;

namespace IsoTest.Cli.Commands;

/// <summary>
/// How a pull shows its progress: a bar per layer on a terminal (Spectre.Console), one line per layer and phase
/// otherwise (a pipe, a file, NO_COLOR set, TERM=dumb), as <c>docker pull</c> does. Disposing draws the last frame.
/// </summary>
internal abstract class PullProgressDisplay : IProgress<ImagePullProgress>, IAsyncDisposable
{
    /// <summary>The display for <paramref name="output"/>: bars only when it is a terminal and the environment allows colour and cursor moves.</summary>
    public static PullProgressDisplay For(TextWriter output, CliContext context)
    {
        var plain = !string.IsNullOrEmpty(context.GetEnvironmentVariable("NO_COLOR"))
            || string.Equals(context.GetEnvironmentVariable("TERM"), "dumb", StringComparison.Ordinal)
            || !context.IsTerminal(output);
        return plain ? new Lines(output) : new Bars(output, context.GetEnvironmentVariable("COLUMNS"));
    }

    public abstract void Report(ImagePullProgress value);

    public virtual ValueTask DisposeAsync() => ValueTask.CompletedTask;

    /// <summary>Twelve hex digits of a digest, as docker shows layer ids.</summary>
    internal static string ShortId(string digest) =>
        digest.StartsWith("sha256:", StringComparison.Ordinal) && digest.Length >= 19 ? digest[7..19] : digest;

    internal static string Words(ImagePullPhase phase) => phase switch
    {
        ImagePullPhase.Resolved => "Resolved manifest",
        ImagePullPhase.AlreadyExists => "Already exists",
        ImagePullPhase.Downloading => "Downloading",
        ImagePullPhase.Downloaded => "Download complete",
        ImagePullPhase.Extracting => "Extracting",
        _ => "Pull complete",
    };

    /// <summary>One line per layer and phase; the byte counts of Downloading (thousands of chunks) are left out.</summary>
    private sealed class Lines(TextWriter output) : PullProgressDisplay
    {
        public override void Report(ImagePullProgress value)
        {
            if (value.Phase == ImagePullPhase.Downloading)
            {
                return;
            }

            lock (this)
            {
                output.WriteLine($"{ShortId(value.Layer)}: {Words(value.Phase)}");
            }
        }
    }

    /// <summary>A live Spectre.Console progress table, one row (description, bar, percentage, bytes) per layer.</summary>
    private sealed class Bars : PullProgressDisplay
    {
        private readonly TaskCompletionSource<ProgressContext> _context = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly Dictionary<string, ProgressTask> _rows = new(StringComparer.Ordinal);
        private readonly Task _render;

        public Bars(TextWriter output, string? columns)
        {
            var console = AnsiConsole.Create(new AnsiConsoleSettings
            {
                Ansi = AnsiSupport.Yes,
                ColorSystem = ColorSystemSupport.Standard,
                Interactive = InteractionSupport.Yes,
                Out = new AnsiConsoleOutput(output),
            });
            if (int.TryParse(columns, out var width) && width > 20)
            {
                console.Profile.Width = width;
            }

            _render = console.Progress()
                .AutoClear(false)
                .HideCompleted(false)
                .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new DownloadedColumn())
                .StartAsync(async context =>
                {
                    _context.SetResult(context);
                    await _done.Task.ConfigureAwait(false);
                });
        }

        public override void Report(ImagePullProgress value)
        {
            if (value.Phase == ImagePullPhase.Resolved)
            {
                return; // the manifest has no bytes to show; its layers follow
            }

            var context = _context.Task.GetAwaiter().GetResult();
            lock (_rows)
            {
                if (!_rows.TryGetValue(value.Layer, out var row))
                {
                    row = context.AddTask(ShortId(value.Layer), autoStart: true, maxValue: Math.Max(1, value.Total ?? 1));
                    _rows[value.Layer] = row;
                }

                if (value.Total is > 0 and var total && row.MaxValue != total)
                {
                    row.MaxValue = total;
                }

                row.Description = $"{ShortId(value.Layer)} {Words(value.Phase)}";
                row.Value = value.Phase == ImagePullPhase.Downloading ? value.Current : row.MaxValue;
            }
        }

        public override async ValueTask DisposeAsync()
        {
            lock (_rows)
            {
                foreach (var row in _rows.Values)
                {
                    row.StopTask();
                }
            }

            _done.TrySetResult();
            await _render.ConfigureAwait(false);
        }
    }
}

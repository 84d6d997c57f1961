using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Invocation;

namespace IsoTest.Cli.CommandLine;

/// <summary>
/// A paragraph printed after a command's generated help (exit codes, how the arguments are read): the
/// one-line description is what the command list shows, so the longer text goes here.
/// </summary>
internal static class HelpNotes
{
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<Command, string> Notes = [];

    /// <summary>Prints <paramref name="notes"/> after the help of <paramref name="command"/>.</summary>
    public static void Set(Command command, string notes) => Notes.AddOrUpdate(command, notes);

    /// <summary>The <c>--help</c> option of <paramref name="command"/>: generated help, then its notes.</summary>
    public static HelpOption For(Command command)
    {
        var option = new HelpOption("--help");
        if (Notes.TryGetValue(command, out var notes))
        {
            option.Action = new WithNotes(notes);
        }

        return option;
    }

    private sealed class WithNotes(string notes) : SynchronousCommandLineAction
    {
        /// <summary>As for the built-in help: <c>--help</c> among bad flags still shows help.</summary>
        public override bool ClearsParseErrors => true;

        public override int Invoke(ParseResult parseResult)
        {
            var exit = new HelpAction().Invoke(parseResult);
            parseResult.InvocationConfiguration.Output.WriteLine(notes);
            return exit;
        }
    }
}

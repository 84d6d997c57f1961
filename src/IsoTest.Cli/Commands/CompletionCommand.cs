using System.CommandLine;
using IsoTest.Cli.CommandLine;

namespace IsoTest.Cli.Commands;

/// <summary>
/// <c>isotest completion bash</c>: prints a bash completion script. The script asks isotest itself for the
/// candidates through System.CommandLine's <c>[suggest:POSITION]</c> directive, so completion always matches
/// the flags of the installed version. Install it with <c>source &lt;(isotest completion bash)</c>, or write it to
/// <c>/etc/bash_completion.d/isotest</c>.
/// </summary>
internal static class CompletionCommand
{
    /// <summary>The script; <c>COMP_LINE</c>/<c>COMP_POINT</c> are bash's command line and cursor offset.</summary>
    public const string BashScript = """
        # bash completion for isotest: source <(isotest completion bash)
        _isotest_complete() {
            local IFS=$'\n'
            local candidates
            candidates=$("${COMP_WORDS[0]}" "[suggest:${COMP_POINT}]" "${COMP_LINE}" 2>/dev/null) || return
            COMPREPLY=( $(compgen -W "${candidates}" -- "${COMP_WORDS[COMP_CWORD]}") )
        }
        complete -o default -o nospace -F _isotest_complete isotest

        """;

    /// <summary>The <c>completion</c> command.</summary>
    public static Command Create(CliContext context)
    {
        var shell = new Argument<string>("SHELL") { Description = "The shell to complete in: bash" };
        shell.CompletionSources.Add("bash");
        shell.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<string>() is { } value and not "bash")
            {
                result.AddError($"'{value}' is not a shell isotest completes: use bash (zsh reads it too, after autoload -U bashcompinit && bashcompinit)");
            }
        });
        var command = new Command("completion", "Print a shell completion script (source <(isotest completion bash))") { shell };
        command.SetAction(async (_, cancellationToken) =>
        {
            await context.Stdout.WriteAsync(BashScript.AsMemory(), cancellationToken).ConfigureAwait(false);
            return 0;
        });
        return command;
    }
}

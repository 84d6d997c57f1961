using System.Diagnostics;

namespace IsoTest.Engine.Tests.Support;

/// <summary>
/// Runs a script in engine containers from a separate engine process (tests/IsoTest.Engine.Tests.Owner,
/// `run` mode) that python3 starts after it set up what the engine then inherits: descriptors not
/// marked close-on-exec, a session keyring. The test process cannot do that itself: .NET opens every
/// file CLOEXEC, and a keyring joined here would stay with the test host.
/// </summary>
public static class InheritingOwner
{
    /// <summary>Runs <paramref name="script"/> as the payload and as an exec; returns everything the owner printed.</summary>
    /// <param name="pythonSetup">
    /// Python statements run before the owner is exec'd (<c>os</c>, <c>ctypes</c>, <c>libc</c> and <c>arch</c> are
    /// there); they may change <c>script</c>, e.g. to name a key id they made.
    /// </param>
    /// <param name="script">The shell script to run inside.</param>
    /// <param name="unconfined">Without a seccomp filter: for probes of a defence seccomp would also stop.</param>
    public static async Task<string> RunAsync(string pythonSetup, string script, bool unconfined = false)
    {
        var ownerDll = Path.Combine(
            AppContext.BaseDirectory.Replace("IsoTest.Engine.Tests", "IsoTest.Engine.Tests.Owner", StringComparison.Ordinal),
            "IsoTest.Engine.Tests.Owner.dll");
        var wrapper = $$"""
            import os, sys, ctypes, platform
            libc = ctypes.CDLL(None, use_errno=True)
            arch = platform.machine()
            script = sys.argv[2]
            {{pythonSetup}}
            os.execvp("dotnet", ["dotnet", sys.argv[1], "run", script] + sys.argv[3:])
            """;
        var start = new ProcessStartInfo("/usr/bin/python3", ["-c", wrapper, ownerDll, script, .. (unconfined ? new[] { "unconfined" } : [])])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var owner = System.Diagnostics.Process.Start(start)!;
        var stdout = owner.StandardOutput.ReadToEndAsync();
        var stderr = owner.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        try
        {
            await owner.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            owner.Kill(entireProcessTree: true);
            throw;
        }

        var output = await stdout + await stderr;
        Assert.True(owner.ExitCode == 0, $"the owner failed (exit {owner.ExitCode}):\n{output}");
        Assert.Contains("payload exit 0", output);
        Assert.Contains("exec exit 0", output);
        return output;
    }
}

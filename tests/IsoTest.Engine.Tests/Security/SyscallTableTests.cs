using System.Diagnostics;
using IsoTest.Engine.Security;

namespace IsoTest.Engine.Tests.Security;

/// <summary>The checked-in syscall table is what the generator makes from this machine's kernel headers.</summary>
public sealed class SyscallTableTests
{
    [Fact]
    public void Table_MatchesTheKernelHeaders()
    {
        var root = RepositoryRoot();
        var script = Path.Combine(root, "src/IsoTest.Engine/Security/gen-syscall-table.sh");
        var psi = new ProcessStartInfo("sh", [script]) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var process = System.Diagnostics.Process.Start(psi)!;
        var output = process.StandardOutput.ReadToEnd();
        var error = process.StandardError.ReadToEnd();
        process.WaitForExit();

        Assert.True(process.ExitCode == 0, $"gen-syscall-table.sh failed (needs cc and linux-libc-dev): {error}");
        var checkedIn = File.ReadAllText(Path.Combine(root, "src/IsoTest.Engine/Security/SyscallTable.g.cs"));
        Assert.True(checkedIn == output, "SyscallTable.g.cs differs from the headers: run sh src/IsoTest.Engine/Security/gen-syscall-table.sh > src/IsoTest.Engine/Security/SyscallTable.g.cs");
    }

    [Fact]
    public void Table_KnowsTheNumbersEveryoneKnows()
    {
        Assert.Equal(0, SyscallTable.Number(SeccompArch.X86_64, "read"));
        Assert.Equal(59, SyscallTable.Number(SeccompArch.X86_64, "execve"));
        Assert.Equal(435, SyscallTable.Number(SeccompArch.X86_64, "clone3"));
        Assert.Equal(63, SyscallTable.Number(SeccompArch.Aarch64, "read"));
        Assert.Equal(221, SyscallTable.Number(SeccompArch.Aarch64, "execve"));
        Assert.Equal(79, SyscallTable.Number(SeccompArch.Aarch64, "newfstatat"));
        Assert.Null(SyscallTable.Number(SeccompArch.Aarch64, "open")); // aarch64 has openat only
        Assert.Equal(0x40000000 | 0, SyscallTable.Number(SeccompArch.X32, "read"));
        Assert.Equal(11, SyscallTable.Number(SeccompArch.I386, "execve"));
    }

    private static string RepositoryRoot()
    {
        var dir = AppContext.BaseDirectory;
        while (dir is not null && !File.Exists(Path.Combine(dir, "IsoTest.sln")))
        {
            dir = Path.GetDirectoryName(dir);
        }

        return dir ?? throw new InvalidOperationException("IsoTest.sln not found above " + AppContext.BaseDirectory);
    }
}

using System.Diagnostics;
using IsoTest.Engine.Native;

namespace IsoTest.Engine.Tests.Native;

/// <summary>Init is killed from outside through a pidfd, which names one process and never the next owner of its number.</summary>
public sealed class ProcessHandleTests
{
    [Fact]
    public void Kill_ALiveProcess_SigkillsIt()
    {
        using var sleeper = System.Diagnostics.Process.Start(new ProcessStartInfo("sleep", "30"))!;
        using var handle = ProcessHandle.TryOpen(sleeper.Id);
        Assert.NotNull(handle);
        Assert.True(handle.IsAlive);

        handle.Kill();

        Assert.True(sleeper.WaitForExit(TimeSpan.FromSeconds(10)), "sleep was not killed");
        Assert.Equal(128 + 9, sleeper.ExitCode);
    }

    [Fact]
    public void Kill_AfterTheProcessWasReaped_IsFine()
    {
        using var quick = System.Diagnostics.Process.Start(new ProcessStartInfo("sleep", "30"))!;
        using var handle = ProcessHandle.TryOpen(quick.Id)!;
        handle.Kill();
        quick.WaitForExit();

        Assert.False(handle.IsAlive);
        handle.Kill(); // ESRCH through the pidfd: no other process can be hit
        handle.Dispose();
        handle.Kill(); // disposed: nothing to do
        Assert.False(handle.IsAlive);
    }

    [Fact]
    public void TryOpen_NoSuchProcess_IsNull()
    {
        Assert.Null(ProcessHandle.TryOpen(0));
        Assert.Null(ProcessHandle.TryOpen(int.Parse(File.ReadAllText("/proc/sys/kernel/pid_max"), System.Globalization.CultureInfo.InvariantCulture)));
    }
}

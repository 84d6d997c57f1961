using Xunit;
namespace IsoTest.Engine.Tests.Cgroups.Fakes;

/// <summary>A fact that needs root on the real kernel (creating v1 cgroups); skipped, saying so, otherwise.</summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class RootFactAttribute : FactAttribute
{
    public RootFactAttribute()
    {
        if (Environment.UserName != "root" && Tmds.Linux.LibC.geteuid() != 0)
        {
            Skip = "Needs root: it creates cgroups on the real kernel (run the tests as root).";
        }
        else if (File.Exists("/sys/fs/cgroup/cgroup.controllers") || !Directory.Exists("/sys/fs/cgroup/memory"))
        {
            Skip = "Needs cgroup v1 controllers under /sys/fs/cgroup (this machine runs unified v2; the v2 driver is tested against a fake tree).";
        }
    }
}

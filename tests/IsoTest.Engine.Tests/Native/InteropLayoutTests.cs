using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using IsoTest.Engine.Native;
using IsoTest.Engine.Process;

namespace IsoTest.Engine.Tests.Native;

/// <summary>Interop structs must match glibc's layout (sizeof/offsetof from the C headers: x86_64, and arm64 where it differs).</summary>
public sealed class InteropLayoutTests
{
    [Fact]
    public void MsgHdr_MatchesGlibc() => Assert.Equal(56, Unsafe.SizeOf<Libc.MsgHdr>());

    [Fact]
    public void CmsgHdr_MatchesGlibc() => Assert.Equal(16, Unsafe.SizeOf<Libc.CmsgHdr>());

    [Fact]
    public void EpollEvent_PackedLayout_IsX64s()
    {
        // <sys/epoll.h>: __EPOLL_PACKED on x86_64: sizeof 12, offsetof(data) 4.
        Assert.Equal(12, Unsafe.SizeOf<Libc.EpollEventPacked>());
        Assert.Equal(4, (int)Marshal.OffsetOf<Libc.EpollEventPacked>(nameof(Libc.EpollEventPacked.Data)));
    }

    [Fact]
    public void EpollEvent_AlignedLayout_IsArm64s()
    {
        // Everywhere else the struct is naturally aligned: sizeof 16, offsetof(data) 8.
        Assert.Equal(16, Unsafe.SizeOf<Libc.EpollEventAligned>());
        Assert.Equal(8, (int)Marshal.OffsetOf<Libc.EpollEventAligned>(nameof(Libc.EpollEventAligned.Data)));
    }

    [Fact]
    public void EpollEvent_TheLayoutInUse_IsThisArchitectures()
    {
        Assert.Equal(RuntimeInformation.ProcessArchitecture == Architecture.X64, Libc.EpollEventIsPacked);
    }

    [Fact]
    public void OpenFlags_AreEachArchitecturesFromTheHeaders()
    {
        // <asm-generic/fcntl.h> (x86_64) and arch/arm64/include/uapi/asm/fcntl.h.
        Assert.Equal((0x10000, 0x20000), Libc.OpenFlagsFor(Architecture.X64));
        Assert.Equal((0x4000, 0x8000), Libc.OpenFlagsFor(Architecture.Arm64));
        Assert.Equal(Libc.OpenFlagsFor(RuntimeInformation.ProcessArchitecture), (Libc.O_DIRECTORY, Libc.O_NOFOLLOW));
    }

    [Fact]
    public void OpenFlags_InUse_TheKernelHonoursThem()
    {
        // A wrong bit asks for another flag and goes unnoticed; the kernel's refusals show the bit is the right one.
        var dir = Directory.CreateTempSubdirectory("isotest-openflags-");
        try
        {
            var file = Path.Combine(dir.FullName, "file");
            File.WriteAllText(file, "x");
            var link = Path.Combine(dir.FullName, "link");
            File.CreateSymbolicLink(link, file);

            Assert.Equal(-1, Libc.open(file, Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_CLOEXEC, 0));
            Assert.Equal(Libc.ENOTDIR, Libc.Errno);
            Assert.Equal(-1, Libc.open(link, Libc.O_RDONLY | Libc.O_NOFOLLOW | Libc.O_CLOEXEC, 0));
            Assert.Equal(Libc.ELOOP, Libc.Errno);

            int fd = Libc.open(dir.FullName, Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_CLOEXEC, 0);
            Assert.True(fd >= 0, $"opening a directory with O_DIRECTORY failed: errno {Libc.Errno}");
            Libc.close(fd);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public void OpenHow_MatchesTheKernel() => Assert.Equal(24, Unsafe.SizeOf<Libc.OpenHow>());

    [Fact]
    public void Poller_ReportsAReadySocketByItsKey_AndAWakeUp()
    {
        // The kernel writes the event with this architecture's layout: a wrong one reads a garbled key.
        var (a, b) = Fd.SeqPacketPair();
        using var sender = new AgentSocket(a);
        using var receiver = new AgentSocket(b);
        var poller = new Poller();
        poller.Add(receiver, 0x1234_5678_9abc_def0);
        Span<ulong> keys = stackalloc ulong[4];

        sender.Send(AgentProtocol.Encode(["x"]));
        Assert.Equal(1, poller.Wait(keys));
        Assert.Equal(0x1234_5678_9abc_def0UL, keys[0]);

        Assert.True(receiver.TryReceive(new byte[64], out _, out _, out _));
        poller.Remove(receiver);
        poller.Wake();
        Assert.Equal(1, poller.Wait(keys));
        Assert.Equal(Poller.WakeKey, keys[0]);
    }

    [Fact]
    public void CmsgSpace_ForOneDescriptor_Is24() => Assert.Equal(24, Libc.CmsgSpace(sizeof(int)));

    [Fact]
    public void SocketPair_RoundTripsAMessageWithADescriptor()
    {
        var (a, b) = Fd.SeqPacketPair();
        using var sender = new AgentSocket(a);
        using var receiver = new AgentSocket(b);
        using var devNull = Fd.OpenDevNull();

        sender.Send(AgentProtocol.Encode(["verb", "1", ""]), [devNull]);

        var buffer = new byte[1024];
        Assert.True(receiver.TryReceive(buffer, out var length, out var fds, out var closed));
        Assert.Equal(["verb", "1", ""], AgentProtocol.Decode(buffer.AsSpan(0, length)));
        using var received = Assert.Single(fds);
        Assert.False(closed);
        Assert.True(File.Exists($"/proc/self/fd/{received.DangerousGetHandle()}"));
    }

    [Fact]
    public void Send_AfterDispose_ThrowsInsteadOfWritingToAReusedDescriptor()
    {
        var (a, b) = Fd.SeqPacketPair();
        var closed = new AgentSocket(a);
        int number = closed.RawFd;
        closed.Dispose();
        b.Dispose();

        // The kernel hands out the lowest free number: the next socket most likely gets the same one.
        var (c, d) = Fd.SeqPacketPair();
        using var reused = new AgentSocket(c);
        using var peer = new AgentSocket(d);

        Assert.Throws<ObjectDisposedException>(() => closed.Send(AgentProtocol.Kill()));
        Assert.False(peer.TryReceive(new byte[64], out _, out _, out _), $"a message reached the socket now numbered {number}");
    }
}

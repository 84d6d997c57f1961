using System.Runtime.InteropServices;

namespace IsoTest.Engine.Tests.Support;

internal static partial class HostCalls
{
    [LibraryImport("libc", EntryPoint = "chown", StringMarshalling = StringMarshalling.Utf8)]
    [return: MarshalAs(UnmanagedType.I4)]
    public static partial int Chown(string path, int uid, int gid);
}

using IsoTest.Xunit;

// This project's own tests run on the IsoTest framework too: RealContainerTests take real containers as parameters.
[assembly: UseIsoTest]

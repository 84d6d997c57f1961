using IsoTest.Xunit;

// The IsoTest test framework starts the containers that [ContainerFixture] declares and hands them to tests.
[assembly: UseIsoTest]

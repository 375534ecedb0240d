pub struct Context;
